"""A lone picture's pass runs its memory-bound tail (AlexNet's classifier) on one thread while
its layers are encoded: the same logits bit for bit as the plain network, threads restored."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import torch
from torchvision.models import alexnet

from app import pipeline
from app.pipeline import Options, infer, memory_bound_tail, prepare
from models.zoo.registry import load_registry
from tests.conftest import encode, scene

MAX_PIXELS = 16_777_216


def test_only_fully_connected_pooling_or_elementwise_layers_count_as_a_memory_bound_tail() -> None:
    network = alexnet(weights=None)
    assert memory_bound_tail(network, ("features.1", "features.4", "features.11"))
    assert not memory_bound_tail(network, ("features.1",))  # convolutions still to come
    assert not memory_bound_tail(network, ("classifier.6",))  # nothing left to run
    assert not memory_bound_tail(network, ("no.such.layer",))
    assert not memory_bound_tail(network, ())


@pytest.mark.parametrize("pictures", [1, 2])
def test_the_classifier_runs_on_one_thread_for_a_lone_picture_only(
    alexnet_weights: Path, monkeypatch: pytest.MonkeyPatch, pictures: int
) -> None:
    entry = load_registry(["alexnet"], alexnet_weights)["alexnet"]
    assert entry.network is not None
    # The pass takes every core (no core to spare): encoding waits for the last layer.
    monkeypatch.setattr(pipeline, "available_cores", lambda: 2)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    options = Options(entry.default_layers, 5, "json")
    prepared = [prepare(entry, encode(scene(320, 240, seed=i), "JPEG"), MAX_PIXELS) for i in range(pictures)]
    seen: list[int] = []
    classifier = entry.network.get_submodule("classifier")
    handle = classifier.register_forward_hook(lambda *_: seen.append(torch.get_num_threads()))
    try:
        with ThreadPoolExecutor(max_workers=2) as pool:

            def submit(job: Callable[[], str]) -> Any:
                return pool.submit(job)

            inferred = infer(entry, options, prepared, submit)
            after = torch.get_num_threads()
        seen_in_pass = list(seen)
        with torch.inference_mode():  # the plain network on two threads, no capture
            plain = entry.network(torch.stack([p.tensor for p in prepared]))
    finally:
        handle.remove()
        torch.set_num_threads(threads)
    assert seen_in_pass[0] == (1 if pictures == 1 else 2)
    assert after == 2  # the pass's threads, restored
    for row, item in enumerate(inferred):
        assert torch.equal(torch.from_numpy(item.result.logits), plain[row])

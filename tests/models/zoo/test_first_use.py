"""``ModelEntry.ensure_loaded``: a first-use entry is built once whatever the number of threads
asking, keeps its identity, and a build that raises leaves it unavailable with the reason."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from torch import nn

from models.zoo.entry import ModelEntry


def listed(**fields: object) -> ModelEntry:
    base: dict[str, object] = {
        "id": "net", "title": "Net", "description": "", "trained_on": "", "input_size": 32,
        "mean": (0.5, 0.5, 0.5), "std": (0.2, 0.2, 0.2), "classes": ["a", "b"], "available": True, "trained": True,
    }
    return ModelEntry(**{**base, **fields})  # type: ignore[arg-type]


def test_many_threads_build_it_once() -> None:
    calls: list[str] = []
    network = nn.Conv2d(3, 2, 3)
    entry = listed()

    def build() -> ModelEntry:
        calls.append(threading.current_thread().name)
        time.sleep(0.2)
        return listed(network=network, default_layers=("conv",), cam_layer="conv")

    entry.loader = build
    assert not entry.loaded and entry.summary()["loaded"] is False
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: entry.ensure_loaded(), range(8)))
    assert len(calls) == 1
    assert entry.loaded and entry.network is network and entry.cam_layer == "conv" and entry.summary()["loaded"]
    entry.ensure_loaded()
    assert len(calls) == 1


def test_a_build_that_raises_leaves_it_unavailable_with_the_reason() -> None:
    entry = listed()

    def build() -> ModelEntry:
        raise RuntimeError("no such block")

    entry.loader = build
    entry.ensure_loaded()
    assert entry.loaded and not entry.available and entry.network is None
    assert entry.unavailable_reason == "The network could not be built (RuntimeError: no such block)."

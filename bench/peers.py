"""Rows 2: the same extraction (default layers, one image) with the peer libraries.

torchvision's ``create_feature_extractor`` (an FX-traced copy of the network), Captum's
``LayerActivation`` (forward hooks) and torchlens (logs every operation). Each is timed in
the same interleaved loop as the bare forward pass and our capture, and its maps are checked
against ours; a library that is not installed gives a "skipped" row instead of failing.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np
import torch
from torch import nn

from bench.common import Config, Row, interleaved, median_ms, registry
from bench.inprocess import bare_forward, numpy_maps, prepared
from models.activations import compute_activations
from models.zoo.registry import ModelEntry

Extractor = Callable[[], dict[str, torch.Tensor]]


def torchvision_extractor(network: nn.Module, batch: torch.Tensor, layers: tuple[str, ...]) -> Extractor:
    from torchvision.models.feature_extraction import create_feature_extractor

    extractor = create_feature_extractor(network, return_nodes={name: name for name in layers})

    def run() -> dict[str, torch.Tensor]:
        with torch.inference_mode():
            return dict(extractor(batch))

    return run


def captum_extractor(network: nn.Module, batch: torch.Tensor, layers: tuple[str, ...]) -> Extractor:
    from captum.attr import LayerActivation

    modules = dict(network.named_modules())
    method = LayerActivation(network, [modules[name] for name in layers])

    def run() -> dict[str, torch.Tensor]:
        with torch.no_grad():
            outputs = method.attribute(batch)
        return dict(zip(layers, outputs, strict=True))

    return run


def torchlens_extractor(network: nn.Module, batch: torch.Tensor, layers: tuple[str, ...]) -> Extractor:
    import torchlens
    from torchlens.options import CaptureOptions

    selector = torchlens.module(layers[0])
    for name in layers[1:]:
        selector = selector | torchlens.module(name)
    # unwrap_when_done: torchlens otherwise leaves torch's functions wrapped for the rest of
    # the process, which would slow every other row measured after it.
    options = CaptureOptions(unwrap_when_done=True)

    def run() -> dict[str, torch.Tensor]:
        with torch.no_grad():
            trace = torchlens.trace(network, batch, save=selector, capture=options)
        return {name: trace[name].out for name in layers}

    return run


PEERS: dict[str, Callable[[nn.Module, torch.Tensor, tuple[str, ...]], Extractor]] = {
    "torchvision create_feature_extractor": torchvision_extractor,
    "Captum LayerActivation": captum_extractor,
    "torchlens trace": torchlens_extractor,
}


def max_difference(ours: dict[str, np.ndarray], theirs: dict[str, torch.Tensor]) -> float:
    return max(float(np.abs(ours[name] - theirs[name].detach()[0].numpy()).max()) for name in ours)


def run(config: Config) -> list[Row]:
    rows: list[Row] = []
    for model in config.models:
        entry: ModelEntry = registry()[model]
        assert entry.network is not None
        network, layers = entry.network, entry.default_layers
        tensor = prepared(entry)[2]
        batch = tensor.unsqueeze(0)
        reference = numpy_maps(entry, tensor)
        timed: dict[str, Callable[[], object]] = {
            "bare forward": bare_forward(entry, tensor),
            "ours: models.capture": partial(compute_activations, network, tensor, layers),
        }
        notes: dict[str, str] = {}
        skipped: list[Row] = []
        for name, make in PEERS.items():
            try:
                extractor = make(network, batch, layers)
                difference = max_difference(reference, extractor())
            except ImportError as exc:
                skipped.append(Row("peers", model, name, status="skipped", note=f"not installed ({exc.name})"))
                continue
            except Exception as exc:  # noqa: BLE001 - a peer that breaks is reported, not fatal
                note = f"failed: {type(exc).__name__}: {exc}"[:160]
                skipped.append(Row("peers", model, name, status="skipped", note=note))
                continue
            timed[name] = extractor
            notes[name] = f"max abs diff vs ours {difference:.1e}"
        times = interleaved(timed, config.reps)
        bare = median_ms(times["bare forward"])
        ours = median_ms(times["ours: models.capture"])
        for name, samples in times.items():
            ms = median_ms(samples)
            note = notes.get(name, "reference" if name == "bare forward" else "")
            if name in notes:
                note += f"; {ms / ours:.2f}x ours"
            rows.append(Row("peers", model, name, ms=ms, best_ms=min(samples) * 1000, ratio=ms / bare, note=note))
        rows.extend(skipped)
    return rows

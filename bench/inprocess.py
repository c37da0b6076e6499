"""Rows 1: bare forward (the 1.0x reference), capture, capture + encode, and where the time goes.

"capture + encode" is what the server does once it holds the preprocessed tensor: the
forward pass with capture of the default layers, quantization, PNG atlases, the picture the
network saw, statistics and the JSON bytes, ready to send. It is rebuilt here from the same
functions app.pipeline calls, so each step can be timed on its own; "full pipeline" calls
app.pipeline.analyze itself (decode and preprocess included) to keep the rebuild honest.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from app.encode import as_maps, atlas_columns, data_url, denormalized_png, encode_layer, png_bytes, quantize, tile_atlas
from app.imaging import decode_image
from app.pipeline import Options, analyze, top_predictions
from bench.common import MAX_PIXELS, Config, Row, interleaved, judge, median_ms, photo_jpeg, registry
from models.activations import Activations, compute_activations
from models.registry import ModelEntry

CAPTURE_ENCODE_TARGET = 1.3


def prepared(entry: ModelEntry) -> tuple[bytes, Any, torch.Tensor]:
    """The benchmark picture as upload bytes, decoded image and preprocessed tensor."""
    data = photo_jpeg()
    image = decode_image(data, MAX_PIXELS)
    assert entry.preprocess is not None
    return data, image, entry.preprocess(image)


def bare_forward(entry: ModelEntry, tensor: torch.Tensor) -> Callable[[], object]:
    """The reference: the network alone, batch 1, inference mode, nothing kept."""
    network, batch = entry.network, tensor.unsqueeze(0)
    assert network is not None

    def run() -> object:
        with torch.inference_mode():
            return network(batch)

    return run


def encode_response(entry: ModelEntry, result: Activations, tensor: torch.Tensor, size: tuple[int, int]) -> bytes:
    """Everything after the forward pass, as app.pipeline.analyze does it for format=json."""
    layers = [encode_layer(result.maps[name], entry.layers[name].to_dict()) for name in entry.default_layers]
    seen = denormalized_png(tensor.numpy(), entry.mean, entry.std)
    body = {
        "model": entry.id,
        "input": {"width": size[0], "height": size[1], "preprocessed": data_url(seen)},
        "predictions": top_predictions(entry, result.probabilities, 5),
        "layers": layers,
        "timings_ms": {},
    }
    return json.dumps(body, separators=(",", ":")).encode()


def candidates(entry: ModelEntry) -> dict[str, Callable[[], object]]:
    data, image, tensor = prepared(entry)
    assert entry.network is not None
    network, layers = entry.network, entry.default_layers
    result = compute_activations(network, tensor, layers)
    maps = [as_maps(result.maps[name]) for name in layers]
    quantized = [quantize(m).q for m in maps]
    options = Options(layers, 5, "json")

    def capture_encode() -> object:
        return encode_response(entry, compute_activations(network, tensor, layers), tensor, image.size)

    def png() -> object:
        atlases = [png_bytes(tile_atlas(q, atlas_columns(q.shape[0]))) for q in quantized]
        return atlases, denormalized_png(tensor.numpy(), entry.mean, entry.std)

    assert entry.preprocess is not None
    preprocess = entry.preprocess
    return {
        "bare forward": bare_forward(entry, tensor),
        "capture (default layers)": lambda: compute_activations(network, tensor, layers),
        "capture + encode (ready to send)": capture_encode,
        "full pipeline (analyze: bytes in, JSON out)": lambda: analyze(entry, data, options, MAX_PIXELS),
        "step: decode": lambda: decode_image(data, MAX_PIXELS),
        "step: preprocess": lambda: preprocess(image),
        "step: quantize": lambda: [quantize(m) for m in maps],
        "step: png": png,
        "step: encode (quantize + png + stats + json)": lambda: encode_response(entry, result, tensor, image.size),
    }


def run(config: Config) -> list[Row]:
    rows: list[Row] = []
    for model in config.models:
        entry = registry()[model]
        # tiny's forward pass takes about a millisecond: more repetitions cost little and
        # steady the medians against the other engineers' jobs.
        reps = config.reps * (3 if model == "tiny" else 1)
        times = interleaved(candidates(entry), reps)
        med = {name: median_ms(samples) for name, samples in times.items()}
        best = {name: min(samples) * 1000 for name, samples in times.items()}
        bare = med["bare forward"]
        # The breakdown's "forward" is the capture row; "json" is what encode costs beyond
        # quantize and png (statistics, base64, json.dumps): a difference of medians.
        med["step: forward (with capture)"] = med["capture (default layers)"]
        med["step: json (stats + base64 + dumps)"] = max(
            0.0, med["step: encode (quantize + png + stats + json)"] - med["step: quantize"] - med["step: png"]
        )
        order = [
            "bare forward",
            "capture (default layers)",
            "capture + encode (ready to send)",
            "full pipeline (analyze: bytes in, JSON out)",
            "step: decode",
            "step: preprocess",
            "step: forward (with capture)",
            "step: quantize",
            "step: png",
            "step: json (stats + base64 + dumps)",
        ]
        for name in order:
            row = Row("in-process", model, name, ms=med[name], best_ms=best.get(name), ratio=med[name] / bare)
            if name == "bare forward":
                row.note = f"reference, {reps} reps"
            if name == "capture + encode (ready to send)":
                row.target = f"<= {CAPTURE_ENCODE_TARGET}x"
                row.status = judge(row.ratio is not None and row.ratio <= CAPTURE_ENCODE_TARGET)
            rows.append(row)
        _, image, tensor = prepared(entry)
        assert entry.network is not None
        result = compute_activations(entry.network, tensor, entry.default_layers)
        body = encode_response(entry, result, tensor, image.size)
        size_row = Row("in-process", model, "JSON size, default layers", value=len(body) / 1000, unit="KB")
        if model == "alexnet":
            size_row.target, size_row.status = "< 600 KB", judge(len(body) < 600_000)
        rows.append(size_row)
    return rows


def bare_ms(model: str, reps: int) -> float:
    """A fresh median of the bare forward pass, for groups that need one at their own time."""
    entry = registry()[model]
    times = interleaved({"bare": bare_forward(entry, prepared(entry)[2])}, reps)
    return median_ms(times["bare"])


def numpy_maps(entry: ModelEntry, tensor: torch.Tensor) -> dict[str, np.ndarray]:
    """Our captured maps for the default layers, to check the peers against."""
    assert entry.network is not None
    return compute_activations(entry.network, tensor, entry.default_layers).maps

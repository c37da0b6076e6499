"""The work of one activations request, from upload bytes to response bytes.

Runs on the inference thread: decoding, preprocessing, the forward pass and encoding are
all CPU-bound, and keeping them together there leaves the event loop free.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from app.encode import data_url, denormalized_png, encode_layer, npz_bytes
from app.imaging import decode_image
from models.activations import compute_activations
from models.explain.assets import ood_stats
from models.explain.checkpoints import network_for
from models.explain.ood import assess
from models.registry import ModelEntry

Format = Literal["json", "npz"]


@dataclass(frozen=True)
class Options:
    layers: tuple[str, ...]
    top_k: int
    format: Format
    checkpoint: str | None = None  # a training snapshot's name; None: the served weights


@dataclass(frozen=True)
class Result:
    body: bytes
    media_type: str


def top_predictions(entry: ModelEntry, probabilities: np.ndarray, k: int) -> list[dict[str, Any]]:
    order = np.argsort(-probabilities, kind="stable")[:k]
    return [
        {"index": int(i), "label": entry.classes[i], "probability": float(probabilities[i])}
        for i in order
    ]


def analyze(entry: ModelEntry, data: bytes, options: Options, max_pixels: int) -> Result:
    assert entry.network is not None and entry.preprocess is not None
    timings: dict[str, float] = {}
    start = time.perf_counter()
    image = decode_image(data, max_pixels)
    timings["decode"] = time.perf_counter() - start

    mark = time.perf_counter()
    tensor = entry.preprocess(image)
    timings["preprocess"] = time.perf_counter() - mark

    mark = time.perf_counter()
    result = compute_activations(network_for(entry, options.checkpoint), tensor, options.layers)
    timings["forward"] = time.perf_counter() - mark

    mark = time.perf_counter()
    if options.format == "npz":
        arrays = dict(result.maps)
        arrays["probabilities"] = result.probabilities
        arrays["logits"] = result.logits
        return Result(npz_bytes(arrays), "application/x-npz")

    layers = [
        encode_layer(result.maps[name], entry.layers[name].to_dict()) for name in options.layers
    ]
    preprocessed = data_url(denormalized_png(tensor.numpy(), entry.mean, entry.std))
    timings["encode"] = time.perf_counter() - mark
    mark = time.perf_counter()
    # The score judges the picture with the served weights: reuse this pass's logits unless a
    # checkpoint computed them.
    ood = unfamiliarity(entry, tensor, result.logits if options.checkpoint is None else None)
    timings["ood"] = time.perf_counter() - mark
    timings["total"] = time.perf_counter() - start
    body = {
        "model": entry.id,
        "input": {"width": image.width, "height": image.height, "preprocessed": preprocessed},
        "predictions": top_predictions(entry, result.probabilities, options.top_k),
        "layers": layers,
        "checkpoint": options.checkpoint,
        **({"ood": ood} if entry.id == "tiny" else {}),
        "timings_ms": {k: round(v * 1000, 3) for k, v in timings.items()},
    }
    return Result(json.dumps(body, separators=(",", ":")).encode(), "application/json")


def unfamiliarity(entry: ModelEntry, tensor: torch.Tensor, logits: np.ndarray | None = None) -> dict[str, Any] | None:
    """The tiny model's unfamiliar-input score (models/explain/ood.py), always with the
    served weights: it judges the picture, not a checkpoint. None without calibration."""
    stats = ood_stats(entry.weights_source) if entry.id == "tiny" else None
    if stats is None or entry.network is None:
        return None
    return dict(assess(stats, entry.network, tensor, logits))

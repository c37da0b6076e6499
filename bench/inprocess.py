"""Rows 1: bare forward (the 1.0x reference), capture, capture + encode, and where the time goes.

"capture + encode" is what the server does once it holds the preprocessed picture: the
forward pass with capture of the default layers, then quantization, PNG atlases, the picture
the network saw, statistics and the JSON bytes, ready to send. It calls app.pipeline's own
stage functions (``infer`` then ``finish``) the way the server does for a lone request: the
layers are encoded side by side on a pool of ``Settings.cpu_workers`` threads (app/inference.py),
during the pass (each layer as it comes when the pass leaves a core free, else from the last
default layer on, beside the classifier). "full pipeline" adds decoding and preprocessing
(``analyze``). The step rows time each piece on one thread, so they add up to the CPU a
request costs. The batch rows give the forward pass's cost per picture when the server runs
4 or 8 waiting pictures as one batch. Every row runs on the intra-op threads the server gives
that model's activations passes (``ModelEntry.torch_threads``: one for tiny), the reference
(``bare_forward``, which every group uses) too.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch

from app.encode import as_maps, atlas_columns, png_bytes, quantize, tile_atlas
from app.imaging import decode_image, preprocess_image
from app.inference import pool_map
from app.pipeline import (
    Mapper,
    Options,
    Submit,
    analyze,
    finish,
    infer,
    intra_op_threads,
    picture_png,
    prepare,
    view_options,
)
from app.settings import get_settings
from bench.common import (
    MAX_PIXELS,
    Config,
    Row,
    interleaved,
    judge,
    median_ms,
    model_threads,
    photo_jpeg,
    registry,
)
from models.activations import compute_activations, compute_batch
from models.zoo.registry import ModelEntry

CAPTURE_ENCODE_TARGET = 1.3
AS_BUILT = "bare forward, NCHW layout (as torchvision builds it)"
BATCHES = (4, 8)


def prepared(entry: ModelEntry) -> tuple[bytes, Any, torch.Tensor]:
    """The benchmark picture as upload bytes, decoded image and preprocessed tensor."""
    data = photo_jpeg()
    image = decode_image(data, MAX_PIXELS)
    assert entry.preprocess is not None
    return data, image, entry.preprocess(image)


def bare_forward(entry: ModelEntry, tensor: torch.Tensor) -> Callable[[], object]:
    """The reference: the network alone, batch 1, inference mode, nothing kept, on the
    threads the server gives this model's passes."""
    network, batch, threads = entry.network, tensor.unsqueeze(0), model_threads(entry)
    assert network is not None

    def run() -> object:
        with torch.inference_mode(), intra_op_threads(threads):
            return network(batch)

    return run


@contextmanager
def worker_pool() -> Iterator[tuple[Mapper[Any, Any], Submit]]:
    """The server's CPU workers, as app.pipeline's ``mapper`` (finish) and ``submit`` (infer)."""
    with ThreadPoolExecutor(max_workers=get_settings().cpu_workers, thread_name_prefix="bench-cpu") as pool:
        yield (lambda fn, items: pool_map(pool, fn, items)), pool.submit


def candidates(entry: ModelEntry, mapper: Mapper[Any, Any], submit: Submit) -> dict[str, Callable[[], object]]:
    data, image, tensor = prepared(entry)
    assert entry.network is not None and entry.preprocess is not None
    network, layers, preprocess = entry.network, entry.default_layers, entry.preprocess
    options = Options(layers, 5, "json")
    staged = prepare(entry, data, MAX_PIXELS)
    (inferred,) = infer(entry, options, [staged])
    maps = [as_maps(inferred.result.maps[name]) for name in layers]
    quantized = [quantize(m).q for m in maps]
    batches = {size: torch.stack([tensor] * size) for size in BATCHES}

    def capture_encode() -> object:
        (fresh,) = infer(entry, options, [staged], submit)
        return finish(entry, options, staged, fresh, mapper)

    def png() -> object:
        atlases = [png_bytes(tile_atlas(q, atlas_columns(q.shape[0]))) for q in quantized]
        return atlases, picture_png(entry, staged)

    def batch_forward(size: int) -> Callable[[], object]:
        def run() -> object:
            with torch.inference_mode():
                return network(batches[size])

        return run

    def batch_capture(size: int) -> Callable[[], object]:
        return lambda: compute_batch(network, batches[size], layers)

    # The network as torchvision and nn.Module build it (the usual NCHW layout), for scale:
    # the reference above is the served network, in the channels-last layout it runs in.
    as_built = copy.deepcopy(network).to(memory_format=torch.contiguous_format)

    def bare_as_built() -> object:
        with torch.inference_mode():
            return as_built(tensor.unsqueeze(0))

    timed: dict[str, Callable[[], object]] = {
        "bare forward": bare_forward(entry, tensor),
        AS_BUILT: bare_as_built,
        "capture (default layers)": lambda: compute_activations(network, tensor, layers),
        "capture + encode (ready to send)": capture_encode,
        "full pipeline (analyze: bytes in, JSON out)": (
            lambda: analyze(entry, data, options, MAX_PIXELS, mapper, submit)
        ),
        "step: decode": lambda: decode_image(data, MAX_PIXELS),
        "step: preprocess": lambda: preprocess_image(preprocess, image),
        "step: quantize": lambda: [quantize(m) for m in maps],
        "step: png": png,
        "step: encode (quantize + png + stats + json)": lambda: finish(entry, options, staged, inferred),
    }
    for size in BATCHES:
        timed[f"forward, batch of {size}"] = batch_forward(size)
        timed[f"capture, batch of {size}"] = batch_capture(size)
    return timed


def encode_response(entry: ModelEntry) -> bytes:
    """The default layers' JSON for the benchmark picture (for its size)."""
    options = view_options(entry)
    return analyze(entry, photo_jpeg(), options, MAX_PIXELS).body


def run(config: Config) -> list[Row]:
    rows: list[Row] = []
    for model in config.models:
        entry = registry()[model]
        # tiny's forward pass takes under two milliseconds: more repetitions cost little and
        # steady the medians against other jobs on the machine.
        reps = config.reps * (3 if model == "tiny" else 1)
        with worker_pool() as (mapper, submit), intra_op_threads(model_threads(entry)):
            times = interleaved(candidates(entry, mapper, submit), reps)
        med = {name: median_ms(samples) for name, samples in times.items()}
        best = {name: min(samples) * 1000 for name, samples in times.items()}
        bare = med["bare forward"]
        # The breakdown's "forward" is the capture row; "json" is what encode costs beyond
        # quantize and png (statistics, base64, json.dumps): a difference of medians.
        med["step: forward (with capture)"] = med["capture (default layers)"]
        for size in BATCHES:  # per picture
            for kind in ("forward", "capture"):
                name = f"{kind}, batch of {size}"
                med[name] /= size
                best[name] /= size
        med["step: json (stats + base64 + dumps)"] = max(
            0.0, med["step: encode (quantize + png + stats + json)"] - med["step: quantize"] - med["step: png"]
        )
        order = [
            "bare forward",
            AS_BUILT,
            "capture (default layers)",
            "capture + encode (ready to send)",
            "full pipeline (analyze: bytes in, JSON out)",
            "step: decode",
            "step: preprocess",
            "step: forward (with capture)",
            "step: quantize",
            "step: png",
            "step: json (stats + base64 + dumps)",
            *(f"{kind}, batch of {size}" for size in BATCHES for kind in ("forward", "capture")),
        ]
        for name in order:
            row = Row("in-process", model, name, ms=med[name], best_ms=best.get(name), ratio=med[name] / bare)
            if name == "bare forward":
                row.note = f"reference, {reps} reps; the served network (channels-last layout)"
            if name == AS_BUILT:
                row.note = "the same weights in the usual layout: not the reference, for scale"
            if "batch of" in name:
                row.note = "per picture"
            if name == "capture + encode (ready to send)":
                row.target = f"<= {CAPTURE_ENCODE_TARGET}x"
                row.status = judge(row.ratio is not None and row.ratio <= CAPTURE_ENCODE_TARGET)
            rows.append(row)
        body = encode_response(entry)
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

"""The work of one activations request, from upload bytes to response bytes, in three stages.

1. ``prepare`` (CPU, any thread): decode the upload and preprocess it for the model.
2. ``infer`` (the inference thread only): the forward pass with capture, for one picture or
   a micro-batch of pictures that want the same model, checkpoint and layers.
3. ``finish`` (CPU, any thread): quantize, PNG atlases, statistics, the response bytes.

Only stage 2 runs torch's network, so the server runs stages 1 and 3 on a small worker pool
(PIL, zlib and numpy release the GIL) while the one inference thread keeps the cores busy
with forward passes (app/inference.py). ``analyze`` runs the three in a row for one picture,
for the CLI and the benchmarks.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal, TypeVar

import numpy as np
import torch
from torch import nn

from app.encode import compact_json, data_url, denormalized_png, layer_json, npz_bytes, png_bytes, raw_marker
from app.imaging import decode_image, preprocess_image
from models.activations import Activations, compute_batch
from models.ood import OODStats, assess, served_layers
from models.zoo.assets import ood_stats
from models.zoo.checkpoints import network_for
from models.zoo.registry import ModelEntry

Format = Literal["json", "npz"]
A = TypeVar("A")
B = TypeVar("B")
# How ``finish`` maps the per-layer encoding: the builtin ``map`` (one thread) or a pool's.
Mapper = Callable[[Callable[[A], B], Sequence[A]], Iterable[B]]
# How ``infer`` hands a layer's encoding to the CPU workers while the forward pass goes on.
Submit = Callable[[Callable[[], str]], Future[str]]


@dataclass(frozen=True)
class Early:
    """A layer's JSON, started on a worker as soon as its map existed (during the pass)."""

    future: Future[str]
    job: Callable[[], str]

    def result(self) -> str:
        # Not started yet: run it here. The caller may be one of the pool's own workers, and
        # waiting for a queued job could then wait forever.
        return self.job() if self.future.cancel() else self.future.result()


@dataclass(frozen=True)
class Options:
    layers: tuple[str, ...]
    top_k: int
    format: Format
    checkpoint: str | None = None  # a training snapshot's name; None: the served weights
    # Layers whose atlas carries only their most active maps, and how many (the default view
    # of a wide network: ModelEntry.view_maps); every other layer carries all of its maps.
    trimmed: tuple[tuple[str, int], ...] = ()

    def maps_of(self, layer: str) -> int | None:
        """How many of ``layer``'s maps the atlas carries (None: all of them)."""
        return next((count for name, count in self.trimmed if name == layer), None)

    @property
    def batch_key(self) -> tuple[str | None, tuple[str, ...], tuple[tuple[str, int], ...]]:
        """Requests (for the same model) whose forward passes may run as one batch (and whose
        layers the pass may start encoding the same way)."""
        return self.checkpoint, self.layers, self.trimmed


def view_options(entry: ModelEntry, top_k: int = 5, format: Format = "json", checkpoint: str | None = None) -> Options:
    """The options of an answer for the model's default view: its widest layers carry their most
    active maps (``ModelEntry.view_maps``) in JSON; npz is always every value."""
    trimmed = tuple(entry.view_maps.items()) if format == "json" else ()
    return Options(entry.default_layers, top_k, format, checkpoint, trimmed)


@dataclass(frozen=True)
class Result:
    body: bytes
    media_type: str


@dataclass
class Prepared:
    """Stage 1's output: the network's input and what encoding needs from the upload."""

    tensor: torch.Tensor  # float32 [3, H, W], normalized: exactly what the network sees
    size: tuple[int, int]  # the upload's width and height (upright)
    seen: np.ndarray | None  # uint8 [H, W, 3]: the same picture before normalization, if known
    started: float  # perf_counter when stage 1 began
    timings: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Inferred:
    """Stage 2's output for one picture."""

    result: Activations  # maps: the requested layers, and any the score still needs
    ood: dict[str, Any] | None  # the unfamiliarity score, if it needed the network
    forward_s: float  # the forward pass this picture was part of (shared by its batch)
    ood_s: float
    batch: int  # how many pictures that forward pass carried
    ood_later: bool = False  # the score needs only ``result``: stage 3 computes it
    encoded: dict[str, Early] = field(default_factory=dict)  # layers whose JSON is under way
    picture: Early | None = None  # the picture the network saw, as a PNG data URL, under way


def top_predictions(entry: ModelEntry, probabilities: np.ndarray, k: int) -> list[dict[str, Any]]:
    order = np.argsort(-probabilities, kind="stable")[:k]
    return [
        {"index": int(i), "label": entry.classes[i], "probability": float(probabilities[i])}
        for i in order
    ]


def prepare(entry: ModelEntry, data: bytes, max_pixels: int) -> Prepared:
    """Stage 1: bytes -> the model's input tensor (and the 8-bit picture it was made from)."""
    assert entry.preprocess is not None
    start = time.perf_counter()
    image = decode_image(data, max_pixels)
    decoded = time.perf_counter()
    tensor, seen = preprocess_image(entry.preprocess, image)
    timings = {"decode": decoded - start, "preprocess": time.perf_counter() - decoded}
    return Prepared(tensor, image.size, seen, start, timings)


def infer(
    entry: ModelEntry, options: Options, batch: Sequence[Prepared], submit: Submit | None = None
) -> list[Inferred]:
    """Stage 2, on the inference thread: one forward pass for every picture in ``batch``.

    With ``submit`` (the CPU workers) and a JSON answer, the encoding runs on the workers
    beside the forward pass. When the pass leaves a core free, each picture's PNG starts
    before it and each requested layer's encoding the moment that layer has its maps; when it
    uses every core, they all start once the last requested layer has its maps, beside the
    rest of the network (AlexNet's fully connected layers, 60 % of its pass, which mostly wait
    on memory).
    """
    network = network_for(entry, options.checkpoint)
    # The unfamiliarity score judges the picture with the served weights. Where it needs only
    # this pass's logits and a few of its maps (captured too: a clone each), stage 3 computes
    # it off this thread; otherwise (a checkpoint, a score that runs the network) it runs here.
    needed = ood_layers(entry)
    later = options.checkpoint is None and needed is not None
    extra = [name for name in (needed or ()) if later and name not in options.layers]
    layers = (*options.layers, *extra)
    threads = pass_threads(entry, torch.get_num_threads())
    early = EarlyEncoding(entry, options, batch, submit, threads < available_cores())
    start = time.perf_counter()
    groups = pass_groups(entry, batch)
    early.before_pass()
    results: list[Activations] = [None] * len(batch)  # type: ignore[list-item]
    for group in groups:
        tensors = torch.stack([batch[i].tensor for i in group])
        with intra_op_threads(threads):
            computed = compute_batch(network, tensors, layers, early.as_ready(group, network))
            if torch.get_num_threads() != threads:  # the callback narrowed the tail of the pass
                torch.set_num_threads(threads)
        for i, result in zip(group, computed, strict=True):
            results[i] = result
    forward_s = time.perf_counter() - start
    inferred = []
    for prepared, result, ready, seen in zip(batch, results, early.encoded, early.pictures, strict=True):
        mark = time.perf_counter()
        ood = None if later else unfamiliarity(entry, prepared.tensor)
        inferred.append(Inferred(result, ood, forward_s, time.perf_counter() - mark, len(batch), later, ready, seen))
    return inferred


class EarlyEncoding:
    """The encoding ``infer`` starts on the CPU workers during a forward pass (JSON answers only).

    With a core to spare (``spare``), each picture's PNG is made before the pass and each
    layer encoded as soon as it has its maps. When the pass uses every core, encoding beside
    the convolutions only slows them (AlexNet: capture + encode 1.24x -> 1.43x), so it all
    waits for the last requested layer and runs beside the rest (AlexNet's classifier).
    """

    def __init__(
        self, entry: ModelEntry, options: Options, batch: Sequence[Prepared], submit: Submit | None, spare: bool
    ) -> None:
        self.entry, self.options, self.batch, self.spare = entry, options, batch, spare
        self.submit = submit if options.format == "json" else None
        self.encoded: list[dict[str, Early]] = [{} for _ in batch]
        self.pictures: list[Early | None] = [None] * len(batch)

    def _begin(self, job: Callable[[], str]) -> Early:
        assert self.submit is not None
        return Early(self.submit(job), job)

    def _begin_pictures(self, group: list[int]) -> None:
        for picture in group:
            self.pictures[picture] = self._begin(partial(picture_url, self.entry, self.batch[picture]))

    def before_pass(self) -> None:
        if self.submit is not None and self.spare:
            self._begin_pictures(list(range(len(self.batch))))

    def as_ready(self, group: list[int], network: nn.Module) -> Callable[[str, torch.Tensor], None] | None:
        """The capture callback for one pass over the pictures ``group`` (None: encode later).

        For a lone picture whose pass ends in layers that wait on memory (``memory_bound_tail``:
        AlexNet's classifier reads 232 MB of weights per picture, as fast on one thread as on
        two), the rest of the pass runs on one thread from the last requested layer on, so the
        encoding started there has the other core (AlexNet, measured against two threads: end
        to end 0.92-0.97x, the same logits bit for bit). A batch shares those reads and uses both.
        """
        if self.submit is None:
            return None
        ready: dict[str, torch.Tensor] = {}
        requested = self.options.layers
        narrow = not self.spare and len(group) == 1 and memory_bound_tail(network, tuple(requested))

        def encode(name: str, output: torch.Tensor) -> None:
            if name not in requested:
                return
            ready[name] = output
            if self.spare:
                due = [name]
            elif len(ready) == len(requested):  # the last requested layer
                self._begin_pictures(group)
                due = list(ready)
                if narrow:
                    torch.set_num_threads(1)  # infer restores the pass's threads afterwards
            else:
                return
            for layer in due:
                for row, picture in enumerate(group):
                    job = layer_job(self.entry, self.options, layer, ready[layer][row].numpy())
                    self.encoded[picture][layer] = self._begin(job)

        return encode


# What may follow the last requested layer for its tail to run on one thread: fully connected
# layers (memory-bound at batch 1), pooling, and element-wise or shape-only modules.
_TAIL_MODULES = (nn.Linear, nn.ReLU, nn.Dropout, nn.MaxPool2d, nn.AdaptiveAvgPool2d, nn.Flatten, nn.Sequential)


@functools.lru_cache(maxsize=64)
def memory_bound_tail(network: nn.Module, layers: tuple[str, ...]) -> bool:
    """Whether every module defined after the last of ``layers`` (in definition order, which is
    the order a Sequential-built network such as AlexNet or VGG runs them) is a fully connected
    layer, pooling or element-wise: no convolution left, so one thread loses nothing there.
    Any other module, or a layer reached twice (a module used again), answers False. Asked on
    every lone picture, so it is worked out once per network and layer list."""
    modules = dict(network.named_modules())
    names = list(modules)
    if not layers or layers[-1] not in modules:
        return False
    after = names[names.index(layers[-1]) + 1 :]
    has_linear = any(isinstance(modules[name], nn.Linear) for name in after)
    return has_linear and all(isinstance(modules[name], _TAIL_MODULES) for name in after if name)


def pass_groups(entry: ModelEntry, batch: Sequence[Prepared]) -> list[list[int]]:
    """The pictures of ``batch`` (their indices) in forward passes: pictures of one input size
    share one pass, at most the model's ``max_batch``; otherwise (a model without a fixed
    crop) one each."""
    most = len(batch) if len({tuple(p.tensor.shape) for p in batch}) == 1 else 1
    if entry.max_batch is not None:
        most = max(1, min(most, entry.max_batch))
    return [list(range(first, min(first + most, len(batch)))) for first in range(0, len(batch), most)]


def pass_threads(entry: ModelEntry, setting: int) -> int:
    """Intra-op threads for a forward pass of ``entry``: the server's ``setting``, or fewer
    where the model asks for fewer (``ModelEntry.torch_threads``)."""
    return setting if entry.torch_threads is None else max(1, min(setting, entry.torch_threads))


@contextmanager
def intra_op_threads(threads: int) -> Iterator[None]:
    """torch's intra-op thread count for the calling thread, restored on leaving."""
    previous = torch.get_num_threads()
    if threads != previous:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        if threads != previous:
            torch.set_num_threads(previous)


def available_cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def layer_job(entry: ModelEntry, options: Options, name: str, maps: np.ndarray) -> Callable[[], str]:
    """The work that turns one layer's maps [C, h, w] into its JSON text."""
    return partial(layer_json, maps, entry.layers[name].to_dict(), options.maps_of(name))


def picture_png(entry: ModelEntry, prepared: Prepared) -> bytes:
    """The picture the network saw, as PNG: the 8-bit crop itself when preprocessing kept it
    (identical to denormalizing the tensor, without the float work), else the tensor denormalized."""
    if prepared.seen is not None:
        return png_bytes(prepared.seen)
    return denormalized_png(prepared.tensor.numpy(), entry.mean, entry.std)


def picture_url(entry: ModelEntry, prepared: Prepared) -> str:
    """``picture_png`` as a JSON string holding its data URL."""
    return f'"{data_url(picture_png(entry, prepared))}"'


def finish(
    entry: ModelEntry, options: Options, prepared: Prepared, inferred: Inferred, mapper: Mapper[Any, Any] = map
) -> Result:
    """Stage 3: the response bytes. ``mapper`` may spread the layers over threads."""
    result = inferred.result
    timings = prepared.timings
    timings["forward"] = inferred.forward_s
    mark = time.perf_counter()
    if options.format == "npz":
        arrays = {name: result.maps[name] for name in options.layers}
        arrays["probabilities"] = result.probabilities
        arrays["logits"] = result.logits
        return Result(npz_bytes(arrays), "application/x-npz")

    def picture() -> str:
        return inferred.picture.result() if inferred.picture is not None else picture_url(entry, prepared)

    def layer(name: str) -> Callable[[], str]:
        if name in inferred.encoded:  # started during the forward pass
            return inferred.encoded[name].result
        return layer_job(entry, options, name, result.maps[name])

    def score() -> dict[str, Any] | None:
        started = time.perf_counter()
        ood = unfamiliarity(entry, prepared.tensor, result.logits, result.maps)
        timings["ood"] = inferred.ood_s + time.perf_counter() - started
        return ood

    # One job per layer, the picture and (when it waited for stage 3) the score: a pool may
    # run them side by side (the caller runs the first).
    jobs: list[Callable[[], Any]] = [*([score] if inferred.ood_later else []), picture]
    jobs += [layer(name) for name in options.layers]
    timings["encode"], timings["ood"] = 0.0, inferred.ood_s  # (the keys' order in the response)
    done = list(mapper(lambda job: job(), jobs))
    ood = done.pop(0) if inferred.ood_later else inferred.ood
    timings["encode"] = time.perf_counter() - mark
    timings["total"] = time.perf_counter() - prepared.started
    body = {
        "model": entry.id,
        "input": {"width": prepared.size[0], "height": prepared.size[1], "preprocessed": raw_marker(0)},
        "predictions": top_predictions(entry, result.probabilities, options.top_k),
        "layers": [raw_marker(i) for i in range(1, len(done))],
        "checkpoint": options.checkpoint,
        **({"ood": ood} if entry.familiarity else {}),
        "timings_ms": {k: round(v * 1000, 3) for k, v in timings.items()},
    }
    return Result(compact_json(body, done).encode(), "application/json")


def analyze(
    entry: ModelEntry,
    data: bytes,
    options: Options,
    max_pixels: int,
    mapper: Mapper[Any, Any] = map,
    submit: Submit | None = None,
) -> Result:
    """The three stages in a row for one picture, on this thread (CLI, benchmarks); ``mapper``
    as in ``finish``, ``submit`` as in ``infer``."""
    prepared = prepare(entry, data, max_pixels)
    (inferred,) = infer(entry, options, [prepared], submit)
    return finish(entry, options, prepared, inferred, mapper)


def unfamiliarity(
    entry: ModelEntry,
    tensor: torch.Tensor,
    logits: np.ndarray | None = None,
    maps: dict[str, np.ndarray] | None = None,
) -> dict[str, Any] | None:
    """The unfamiliar-input score (models/ood/) of a model that has one, always with the
    served weights: it judges the picture, not a checkpoint. None without calibration.
    ``logits`` and ``maps``: the served weights' pass for this picture, when there was one."""
    stats = familiarity_stats(entry)
    if stats is None or entry.network is None:
        return None
    tensors = None if maps is None else {name: torch.from_numpy(array) for name, array in maps.items()}
    return dict(assess(stats, entry.network, tensor, logits, tensors))


def ood_layers(entry: ModelEntry) -> tuple[str, ...] | None:
    """The maps ``unfamiliarity`` needs beside the logits to score a picture without running
    the network; None when it runs the network (or there is no score: then it is instant)."""
    stats = familiarity_stats(entry)
    return () if stats is None else served_layers(stats)


def familiarity_stats(entry: ModelEntry) -> OODStats | None:
    """The calibration the entry's unfamiliar-input score uses, where it has a score and the
    statistics for its served weights ship."""
    return ood_stats(entry.assets_source) if entry.familiarity else None

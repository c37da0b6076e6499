"""Rows for torchvision's ImageNet models: forward time, capture + encode, JSON size and memory per model.

Each model gets random weights under torchvision's file name in a temporary TORCH_HOME and
is loaded by the registry as the server loads it (its builder, our reader, discovery). The
rows: the bare forward pass (the 1.0x reference), capture + encode of the default view as
the server does it for a lone request (``infer`` then ``finish`` on the CPU workers), the
JSON size of that answer (the goal: under 1 MB), the time to load the entry, and the
process's resident memory after loading it (each model on top of the ones before, in order)
and how much loading it added.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from torchvision.models import get_model

from app.pipeline import finish, infer, intra_op_threads, prepare, view_options
from bench.common import MAX_PIXELS, Config, Row, interleaved, judge, median_ms, model_threads, photo_jpeg
from bench.inprocess import bare_forward, worker_pool
from models.zoo import torchvision_zoo as zoo
from models.zoo.imagenet import zoo_entry
from models.zoo.registry import ModelEntry

ZOO_MODELS = ("resnet18", "mobilenet_v3_small", "vgg16", "convnext_tiny", "efficientnet_b0")
JSON_LIMIT = 1_000_000


def rss_mb() -> float:
    """The process's resident memory now (not its peak), from /proc."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


@contextmanager
def torch_home() -> Iterator[Path]:
    """A temporary TORCH_HOME for the run's random weights, removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="layerscope-bench-zoo-"))
    previous, hub = os.environ.get("TORCH_HOME"), torch.hub._hub_dir
    os.environ["TORCH_HOME"], torch.hub._hub_dir = str(folder), None
    try:
        yield folder
    finally:
        torch.hub._hub_dir = hub
        if previous is None:
            os.environ.pop("TORCH_HOME", None)
        else:
            os.environ["TORCH_HOME"] = previous
        shutil.rmtree(folder, ignore_errors=True)


def loaded(name: str) -> tuple[ModelEntry, float]:
    """The entry with random weights saved under torchvision's file name, and seconds to load it."""
    torch.manual_seed(0)
    path = zoo.weights_file(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(get_model(name, weights=None).state_dict(), path)
    started = time.perf_counter()
    entry = zoo_entry(name)
    seconds = time.perf_counter() - started
    path.unlink()  # the file is read: its disk space is not the network's cost
    return entry, seconds


def timed(entry: ModelEntry, reps: int) -> tuple[dict[str, float], int]:
    """Median ms of the bare forward pass and of capture + encode, and the answer's JSON bytes."""
    data = photo_jpeg()
    options = view_options(entry)
    staged = prepare(entry, data, MAX_PIXELS)
    body = b""
    with worker_pool() as (mapper, submit), intra_op_threads(model_threads(entry)):

        def capture_encode() -> object:
            nonlocal body
            (fresh,) = infer(entry, options, [staged], submit)
            body = finish(entry, options, staged, fresh, mapper).body
            return body

        candidates: dict[str, Callable[[], object]] = {
            "bare forward": bare_forward(entry, staged.tensor), "capture + encode": capture_encode,
        }
        times = interleaved(candidates, reps)
    return {name: median_ms(samples) for name, samples in times.items()}, len(body)


def run(config: Config) -> list[Row]:
    rows: list[Row] = []
    reps = max(3, config.reps // 5) if not config.quick else 3
    names = config.extra.get("zoo_models", ZOO_MODELS[:2] if config.quick else ZOO_MODELS)
    with torch_home():
        for name in names:
            before = rss_mb()
            entry, load_s = loaded(name)
            memory = rss_mb()
            medians, size = timed(entry, reps)
            bare = medians["bare forward"]
            ratio = medians["capture + encode"] / bare
            default = ", ".join(entry.default_layers)
            rows += [
                Row("zoo", name, "bare forward", ms=bare, ratio=1.0, note=f"reference, {reps} reps"),
                Row("zoo", name, "capture + encode (ready to send)", ms=medians["capture + encode"], ratio=ratio,
                    note=f"default view: {default}"),
                Row("zoo", name, "JSON size, default layers", value=size / 1000, unit="KB", target="< 1000 KB",
                    status=judge(size < JSON_LIMIT)),
                Row("zoo", name, "load (build, read weights, discover layers)", ms=load_s * 1000),
                Row("zoo", name, "RSS after loading", value=memory, unit="MB",
                    note="the process, with every model before it in this group"),
                Row("zoo", name, "RSS added by loading", value=memory - before, unit="MB",
                    note="includes the random weights the run writes first, where the allocator keeps them"),
            ]
            del entry
    return rows

"""What every group of rows shares: the row type, interleaved timing, models and pictures."""

from __future__ import annotations

import atexit
import contextlib
import io
import math
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from app.pipeline import pass_threads
from models.zoo.registry import ModelEntry, load_registry

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("alexnet", "tiny")
# The server's settings (app.settings): 2 intra-op threads, 1 inter-op thread.
TORCH_THREADS = 2
SAMPLE = ROOT / "static" / "samples" / "photo-cat.jpg"
MAX_PIXELS = 16_777_216


@dataclass
class Row:
    """One line of the table. ``ratio`` is to the bare forward pass of the same model, same run."""

    group: str
    model: str
    name: str
    ms: float | None = None  # median milliseconds, where the row is a time
    best_ms: float | None = None  # fastest repetition: what the code costs when the machine lets it run
    ratio: float | None = None
    value: float | None = None  # a non-time measure (KB, MB, requests/s), with its unit
    unit: str = ""
    target: str = ""  # the goal, in words ("<= 1.3x"), empty for rows that only inform
    status: str = "info"  # pass | miss | info | pending | skipped
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Config:
    """How hard to measure: ``quick`` shortens every group for a smoke run."""

    reps: int = 15
    quick: bool = False
    models: tuple[str, ...] = MODELS
    groups: tuple[str, ...] = ("inprocess", "peers", "gradcam", "http", "fairness", "browser")
    extra: dict[str, Any] = field(default_factory=dict)


def setup_torch() -> None:
    """The server's thread settings, so the bare forward pass is the one the server would run."""
    torch.set_num_threads(TORCH_THREADS)
    # Raises once set in this process (the smoke test may run after other tests).
    with contextlib.suppress(RuntimeError):
        torch.set_num_interop_threads(1)


def model_threads(entry: ModelEntry) -> int:
    """The intra-op threads the server gives ``entry``'s forward passes
    (``ModelEntry.torch_threads``): every row of a model runs on these, the reference too."""
    return pass_threads(entry, TORCH_THREADS)


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000.0


def interleaved(candidates: dict[str, Callable[[], object]], reps: int, warmup: int = 1) -> dict[str, list[float]]:
    """Time every candidate once per repetition, rotating the order, so load hits all alike.

    Returns name -> seconds per repetition. Warm-up calls (first-call allocations, lazy
    imports, graph tracing) are not counted.
    """
    names = list(candidates)
    for _ in range(warmup):
        for name in names:
            candidates[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for rep in range(reps):
        shift = rep % len(names)
        for name in names[shift:] + names[:shift]:
            start = time.perf_counter()
            candidates[name]()
            times[name].append(time.perf_counter() - start)
    return times


def judge(ok: bool | None) -> str:
    return "pending" if ok is None else ("pass" if ok else "miss")


def finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


@cache
@cache
def alexnet_weights() -> Path:
    """Random AlexNet weights written once per run: the real loading path, no download."""
    torch.manual_seed(0)
    from torchvision.models import alexnet

    folder = Path(tempfile.mkdtemp(prefix="layerscope-bench-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)  # 244 MB: never leave it behind
    path = folder / "alexnet-random.pth"
    torch.save(alexnet(weights=None).state_dict(), path)
    return path


class Registry(dict[str, ModelEntry]):
    """Models loaded on first use, as the server loads them (tiny with its shipped weights if present).

    Lazy so a run that asks only for tiny (the smoke test) never builds AlexNet.
    """

    def __missing__(self, model: str) -> ModelEntry:
        weights = str(alexnet_weights()) if model == "alexnet" else None
        entry = self[model] = load_registry([model], weights)[model]
        return entry


@cache
def registry() -> Registry:
    return Registry()


def photo(width: int = 640, height: int = 480, variant: int = 0) -> Image.Image:
    """A natural photo at ``width`` x ``height``; ``variant`` > 0 changes a few pixels.

    Variants differ in bytes (so the server's cache misses) but not in cost.
    """
    image = Image.open(SAMPLE).convert("RGB").resize((width, height), Image.Resampling.BICUBIC)
    if variant:
        pixels = np.asarray(image).copy()
        rng = np.random.default_rng(variant)
        ys, xs = rng.integers(0, height, 16), rng.integers(0, width, 16)
        pixels[ys, xs] = rng.integers(0, 256, (16, 3), dtype=np.uint8)
        image = Image.fromarray(pixels)
    return image


def jpeg(image: Image.Image, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


@cache
def photo_jpeg(variant: int = 0) -> bytes:
    return jpeg(photo(variant=variant))


def load_average() -> str:
    """The 1/5/15-minute load averages and core count, to print beside the numbers."""
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f} on {os.cpu_count()} cores"

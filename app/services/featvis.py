"""A unit's feature visualization: the shipped sprite's tile, else computed on demand and kept.

An on-demand run (AlexNet, or a unit without a shipped sprite) is a heavy job: it waits for
a place in the engine's heavy lane (app/heavy.py), never for one of the pictures' places,
and runs there in slices of about ``SLICE_S`` on the inference thread, so pictures queued
meanwhile are served between the slices rather than after the whole run. A client that
leaves stops it and frees its place. The last ``CACHE_UNITS`` results are kept.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable

import numpy as np

from app.encode import png_bytes
from app.inference import Engine
from app.middleware.clients import current_client
from models.explain.featvis import VisConfig, Visualization
from models.zoo import assets
from models.zoo.registry import ModelEntry

CACHE_UNITS = 512
ON_DEMAND_STEPS = 96
# One turn on the inference thread: a tiny step costs ~4 ms, an AlexNet step at 112 px ~20 ms
# (more on a busy machine), so a picture waits at most about this plus one step. Slicing
# costs the job nothing measurable (96 tiny steps: 316 ms in one call, 282 ms in 15 slices,
# best of 5); on a loaded 2-core machine the bench's fairness rows could not tell 20 ms turns
# from 50 ms ones, so the shorter bound is kept.
SLICE_S = 0.02
# AlexNet at 112 px costs ~5x the tiny model per step (seconds per unit); smaller inputs get 64 px.
LARGE_INPUT = 192

_CACHE: dict[tuple[str, str, str, int], bytes] = {}
_LOCK = threading.Lock()


async def featvis_png(
    entry: ModelEntry, engine: Engine, layer: str, channel: int, disconnected: Callable[[], Awaitable[bool]]
) -> tuple[bytes, str]:
    """The unit's picture as PNG bytes and where it came from ("precomputed" or "computed")."""
    shipped = await engine.run(lambda: assets.unit_featvis(entry.assets_source, layer, channel))
    if shipped is not None:
        return png_bytes(np.ascontiguousarray(shipped)), "precomputed"
    key = (entry.id, entry.weights_source or "", layer, channel)
    with _LOCK:
        cached = _CACHE.get(key)
    if cached is None:
        cached = await _computed(entry, engine, layer, channel, disconnected)
        with _LOCK:
            if len(_CACHE) >= CACHE_UNITS:
                _CACHE.pop(next(iter(_CACHE)))
            _CACHE[key] = cached
    return cached, "computed"


def advance(run: Visualization, budget_s: float) -> bool:
    """Optimization steps until ``budget_s`` has passed (at least one); True once the run is done."""
    deadline = time.perf_counter() + budget_s
    while not run.step(1) and time.perf_counter() < deadline:
        pass
    return run.finished


async def _computed(
    entry: ModelEntry, engine: Engine, layer: str, channel: int, disconnected: Callable[[], Awaitable[bool]]
) -> bytes:
    network = entry.network
    assert network is not None
    size = 64 if entry.input_size <= LARGE_INPUT else 112
    config = VisConfig(size=size, steps=ON_DEMAND_STEPS)
    async with engine.heavy_job(current_client.get(), disconnected) as job:
        run = await job.run(lambda: Visualization(network, layer, [channel], entry.mean, entry.std, config))
        while not await job.run(lambda: advance(run, SLICE_S)):
            pass
        return await job.run(lambda: png_bytes(run.pixels()[0]))

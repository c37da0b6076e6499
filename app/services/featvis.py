"""A unit's feature visualization: the shipped sprite's tile, else computed on demand and kept.

An on-demand run (AlexNet, or a unit without a shipped sprite) goes in short slices through
the engine, so pictures queued meanwhile are served between them rather than after the
whole run; a client that leaves stops it. The last ``CACHE_UNITS`` results are kept.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable

import numpy as np

from app.encode import png_bytes
from app.errors import ProblemError
from app.inference import Engine
from models.explain.featvis import VisConfig, Visualization
from models.zoo import assets
from models.zoo.registry import ModelEntry

CACHE_UNITS = 512
ON_DEMAND_STEPS = 96
SLICE_STEPS = 4  # steps per turn on the inference thread (well under a second)
# AlexNet at 112 px costs ~10x the tiny model per step (seconds per unit); smaller inputs get 64 px.
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


async def _computed(
    entry: ModelEntry, engine: Engine, layer: str, channel: int, disconnected: Callable[[], Awaitable[bool]]
) -> bytes:
    network = entry.network
    assert network is not None
    size = 64 if entry.input_size <= LARGE_INPUT else 112
    config = VisConfig(size=size, steps=ON_DEMAND_STEPS)
    run = await engine.run(lambda: Visualization(network, layer, [channel], entry.mean, entry.std, config))
    while not await engine.run(lambda: run.step(SLICE_STEPS)):
        if await disconnected():
            raise ProblemError(408, "client-left", "The client left before the visualization was done.")
    return await engine.run(lambda: png_bytes(run.pixels()[0]))

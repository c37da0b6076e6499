"""Models built on first use: the first request that needs one builds it, once, in the heavy lane.

The server's registry lists a torchvision classifier other than alexnet without building it
(models/zoo/imagenet.py, ``lazy``): its weights file is found and hashed at start, so the
listing says whether it is available and verified, but its network is built, loaded and its
layers discovered only when a request first asks for that model. A server listing many
models thus starts at once. The build costs seconds on a large network, so it takes a place
in the heavy lane and runs on the inference thread (which runs every network); requests for
the same model that arrive meanwhile wait for that one build. The build is the server's, not
one client's: it takes no client's share, and it goes on when the client that started it leaves.
"""

from __future__ import annotations

import asyncio

from app.inference import Engine
from models.zoo.entry import ModelEntry


async def _never_left() -> bool:
    return False


class FirstUse:
    """The builds in progress, one per model id."""

    def __init__(self) -> None:
        self._builds: dict[str, asyncio.Task[None]] = {}

    async def ready(self, entry: ModelEntry, engine: Engine) -> None:
        """Return once ``entry`` is built (at once when it already is); 503 when the heavy lane is full."""
        if entry.loaded:
            return
        build = self._builds.get(entry.id)
        if build is None:
            build = asyncio.ensure_future(self._build(entry, engine))
            self._builds[entry.id] = build
            build.add_done_callback(lambda done: self._done(entry.id, done))
        # A waiter that is cancelled (its client left) must not cancel the build the others wait for.
        await asyncio.shield(build)

    def _done(self, model_id: str, build: asyncio.Task[None]) -> None:
        self._builds.pop(model_id, None)
        if not build.cancelled():
            build.exception()  # read here, so a refusal nobody waits for any more is not reported as lost

    @staticmethod
    async def _build(entry: ModelEntry, engine: Engine) -> None:
        async with engine.heavy_job(None, _never_left) as job:
            await job.run(entry.ensure_loaded)

"""A live training run (models/training/live.py) streamed to the page as server-sent events.

The run is a heavy job (app/heavy.py): it takes the lane's place for its whole length and
trains in slices of one step on the inference thread, so pictures sent meanwhile are served
between two steps. One run at a time per server (:class:`LiveGate`; a second is refused with
409 rather than queued behind minutes of training), and only where the operator allows it
(``LAYERSCOPE_LIVE_TRAINING``). A client that leaves, or presses Stop (which closes the
stream), stops the run at its next step.

About once a second a ``progress`` event carries the step, the curves so far, the first
layer's filters as a picture atlas and the maps of the watched picture at tiny's default
layers, encoded as the activations answer encodes its layers, so the page draws them with
the same code; a ``result`` event ends the stream.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import torch
from torchvision.transforms._presets import ImageClassification

from app.encode import data_url, denormalized_png, layer_json, png_bytes
from app.errors import ProblemError
from app.heavy import Disconnected, HeavyJob
from app.imaging import decode_image
from app.inference import Engine
from app.sse import admitted, event
from models import world
from models.activations import compute_activations
from models.explain.filters import filter_atlas
from models.layers import DEFAULT_LAYERS, LayerInfo, describe_layers
from models.preprocess import MEAN, STD
from models.training.live import LiveConfig, LiveRun, Snapshot
from models.world import seeds

EVERY_S = 1.0
SLICE_S = 0.05  # one step (a step takes longer): a waiting picture waits at most one step
FILTERS_LAYER = "features.0"
FILTERS_SCALE = 6


class LiveGate:
    """At most one live run in this server."""

    def __init__(self) -> None:
        self.running = False

    @asynccontextmanager
    async def one(self) -> AsyncIterator[None]:
        if self.running:
            raise ProblemError(409, "live-run-busy", "A live training run is already going; wait for it to end.",
                               {"Retry-After": "30"})
        self.running = True
        try:
            yield
        finally:
            self.running = False


def watched_picture(data: bytes | None, max_pixels: int, input_size: int) -> torch.Tensor:
    """The picture whose maps the class watches: the upload, else a held-out world picture."""
    preprocess = ImageClassification(crop_size=input_size, resize_size=input_size, mean=MEAN, std=STD)
    if data:
        return preprocess(decode_image(data, max_pixels))
    sample = world.generate(seeds.LIVE_VALIDATION, 0, input_size)
    return preprocess(torch.from_numpy(sample.image).permute(2, 0, 1))


def progress(snapshot: Snapshot, picture: torch.Tensor, infos: dict[str, LayerInfo]) -> dict[str, Any]:
    """The snapshot as the page draws it: curves, the first layer's filters, the picture's maps
    (``infos``: the layers' descriptions, the same all run long)."""
    network = snapshot.network
    filters = filter_atlas(network, FILTERS_LAYER, FILTERS_SCALE)
    was_training = network.training
    network.eval()
    try:
        maps = compute_activations(network, picture, DEFAULT_LAYERS).maps
    finally:
        network.train(was_training)
    return {
        "step": snapshot.step,
        "elapsed_s": snapshot.elapsed_s,
        "seconds": snapshot.seconds,
        "learners": snapshot.learners,
        "filters": {"png": data_url(png_bytes(filters.atlas)), "columns": filters.columns,
                    "tile": list(filters.tile), "shape": list(filters.shape)},
        "layers": [json.loads(layer_json(maps[name], infos[name].to_dict())) for name in DEFAULT_LAYERS],
    }


def start_body(config: LiveConfig, picture: torch.Tensor) -> dict[str, Any]:
    return {
        "seconds": config.seconds,
        "budget": config.budget,
        "batch_size": config.batch_size,
        "layers": list(DEFAULT_LAYERS),
        "picture": data_url(denormalized_png(picture.numpy(), tuple(MEAN), tuple(STD))),
    }


async def live_events(
    engine: Engine, gate: LiveGate, config: LiveConfig, picture: torch.Tensor,
    client: str | None, disconnected: Disconnected,
) -> AsyncIterator[str]:
    """Admit the run now (its refusals are plain problems); then the stream of its events."""
    places = [gate.one(), engine.heavy_job(client, disconnected)]
    return await admitted(places, lambda held: _events(held[1], config, picture))


async def _events(job: HeavyJob, config: LiveConfig, picture: torch.Tensor) -> AsyncIterator[str]:
    yield event("start", start_body(config, picture))
    run = await job.run(lambda: LiveRun(config))
    infos = describe_layers(run.learners[0].trainee.model.net, int(picture.shape[-1]))
    yield event("progress", await job.run(lambda: progress(run.snapshot(), picture, infos)))
    shown = time.perf_counter()
    done = False
    while not done:
        done = await job.run(lambda: run.advance(SLICE_S))
        if done or time.perf_counter() - shown >= EVERY_S:
            shown = time.perf_counter()
            body = await job.run(lambda: progress(run.snapshot(), picture, infos))
            yield event("result" if done else "progress", body)

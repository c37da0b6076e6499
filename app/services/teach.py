"""The work behind the teaching routes: pictures to features, predictions, heads out and in.

A picture an example or a prediction brings is decoded and preprocessed on the CPU
workers and goes through the base network on the inference thread like any other picture
(``Engine.run_staged``, micro-batched with other teaching pictures of the same model), and
only its pooled features and the base logits come back: the picture itself is dropped
there. Training runs in the heavy lane (app/services/teach_train.py).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from PIL import Image

from app.deps import model_shapes
from app.encode import data_url, png_bytes
from app.errors import ProblemError
from app.firstuse import FirstUse
from app.inference import Engine, Stages
from app.pipeline import (
    Prepared,
    intra_op_threads,
    pass_groups,
    pass_threads,
    picture_png,
    prepare,
    top_predictions,
)
from app.services.units import layer_records, unit_label
from app.teach import Session
from models.explain.render import heatmap_rgba
from models.teach.cam import head_cam
from models.teach.export import BadHead, read_head, read_metadata
from models.teach.features import extract
from models.teach.head import Head
from models.teach.units import Leaning, leaning_units
from models.zoo.registry import ModelEntry

BASE_TOP = 5
MAX_HEAD_BYTES = 1024 * 1024  # a head of 6 classes on 4,096 units is 131 KiB


@dataclass(frozen=True)
class Picture:
    """All that is kept of a picture: the base layer's pooled units and the base logits."""

    pooled: np.ndarray  # float32 [units]
    logits: np.ndarray  # float32 [base classes]
    maps: np.ndarray | None = None  # float32 [units, h, w], for the taught head's CAM
    seen: bytes | None = None  # the picture the network saw, as PNG, to draw the CAM on


def feature_layer(entry: ModelEntry) -> str:
    """The base layer a head reads: the model's last spatial layer (422 when it has none)."""
    if entry.cam_layer is None:
        raise ProblemError(422, "cannot-teach", f"Model {entry.id} has no spatial layer to teach a head on.")
    return entry.cam_layer


def _forward(entry: ModelEntry, layer: str, batch: list[Prepared], keep_maps: bool) -> list[Picture]:
    network = entry.network
    assert network is not None
    pictures: list[Picture] = []
    with intra_op_threads(pass_threads(entry, torch.get_num_threads())):
        for indices in pass_groups(entry, batch):
            group = [batch[i] for i in indices]
            out = extract(network, torch.stack([p.tensor for p in group]), layer, keep_maps)
            maps = out.maps
            pictures += [
                Picture(out.pooled[i], out.logits[i], None if maps is None else maps[i]) for i in range(len(group))
            ]
    return pictures


async def picture_features(
    engine: Engine, entry: ModelEntry, layer: str, data: bytes, max_pixels: int, keep_maps: bool = False
) -> Picture:
    """The upload ``data`` through the base network: decode, preprocess, one (batched) pass.
    ``keep_maps``: the layer's maps and the picture the network saw come back too."""

    def finish(prepared: Prepared, picture: Picture) -> Picture:
        return replace(picture, seen=picture_png(entry, prepared)) if keep_maps else picture

    return await engine.run_staged(
        Stages(
            before=lambda: prepare(entry, data, max_pixels),
            batch_key=("teach", entry.id, layer, keep_maps),
            forward=lambda batch: _forward(entry, layer, batch, keep_maps),
            after=finish,
        )
    )


def cam_json(head: Head, picture: Picture, class_index: int) -> dict[str, Any] | None:
    """Where the evidence for the class lies (models/teach/cam.py), over the picture the network saw."""
    if picture.maps is None or picture.seen is None:
        return None
    height, width = Image.open(io.BytesIO(picture.seen)).size[::-1]
    heat = heatmap_rgba(head_cam(head, picture.maps, class_index), height, width)
    return {"label": head.classes[class_index], "layer": head.layer, "picture": data_url(picture.seen),
            "heatmap": data_url(png_bytes(heat)), "heatmap_size": [height, width]}


def unit_json(entry: ModelEntry, layer: str, leaning: Leaning) -> dict[str, Any]:
    """One unit a class leans on, with its dissection label where the model has one."""
    label = unit_label(layer_records(entry, layer).get(leaning.unit))
    return {
        "layer": layer,
        "title": entry.layers[layer].title if layer in entry.layers else layer,
        "unit": leaning.unit,
        "weight": leaning.weight,
        "activation": leaning.activation,
        "label": label["label"],
        "named": label["named"],  # the dissection names it a part or object detector
        "description": label["description"],
    }


def trained_head(session: Session) -> Head:
    if session.head is None:
        raise ProblemError(409, "not-trained", "This session has no taught head yet: add examples and train it.")
    return session.head


def prediction(entry: ModelEntry, session: Session, picture: Picture) -> dict[str, Any]:
    """The taught classes' probabilities, the units the winner leans on, the base's own answer."""
    head = trained_head(session)
    probabilities = head.probabilities(picture.pooled[None])[0]
    order = np.argsort(-probabilities, kind="stable")
    logits = picture.logits.astype(np.float64)
    base = np.exp(logits - logits.max())
    return {
        "session": session.id,
        "predictions": [{"label": head.classes[i], "probability": float(probabilities[i])} for i in order],
        "units": [unit_json(entry, head.layer, u) for u in leaning_units(head, picture.pooled, int(order[0]))],
        "base": {"model": entry.id, "predictions": top_predictions(entry, base / base.sum(), BASE_TOP)},
        "cam": cam_json(head, picture, int(order[0])),
    }


async def imported_head(
    registry: dict[str, ModelEntry], engine: Engine, first_use: FirstUse, data: bytes
) -> Head:
    """The head in an uploaded file, checked against the model it names (422 when unusable)."""
    try:
        metadata = read_metadata(data)
        entry = registry.get(metadata.get("base", ""))
        if entry is not None and entry.available and not entry.loaded:
            await first_use.ready(entry, engine)  # its layers are known once it is built
        units: int | None = None
        layer = None if entry is None else entry.cam_layer
        if entry is not None and entry.available and layer is not None and metadata.get("layer") == layer:
            units = (await model_shapes(entry, engine))[layer][0]
        return read_head(data, lambda base, _layer: units if entry is not None and base == entry.id else None)
    except BadHead as exc:
        raise ProblemError(422, "bad-head", str(exc)) from None

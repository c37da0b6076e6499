"""Explanations beyond feature maps (issue 5): filters, Grad-CAM, guided backprop, units.

Routes only parse, delegate to models/explain on the inference thread, and encode. Layers
are dotted ``named_modules()`` names, units are channels of a layer's output. Unknown
layers and unusable options answer 422, a unit past the layer's width 404.
"""

from __future__ import annotations

import base64
import json
import threading
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, Query, Request, Response
from fastapi import Path as PathParam

from app.deps import AvailableModelDep, EngineDep, SettingsDep
from app.encode import data_url, png_bytes
from app.errors import ProblemError
from app.imaging import decode_image
from app.inference import Engine
from app.intake import read_image_bytes
from app.routes.api import IMAGE_BODY, NO_STORE
from models.explain.featvis import VisConfig, Visualization
from models.explain.filters import NotDrawable, filter_atlas
from models.explain.gradcam import gradcam as compute_gradcam
from models.explain.guided import guided_backprop
from models.explain.render import heatmap_rgba, signed_image
from models.units import Shapes, cached_shapes, layer_shapes, read_dissection
from models.zoo import assets
from models.zoo.checkpoints import UnknownCheckpoint, network_for, resolve_checkpoint
from models.zoo.registry import ModelEntry

router = APIRouter(prefix="/api/v1", tags=["explanations"])

DEFAULT_CAM_LAYER = "features.11"  # conv5 after its ReLU: the last spatial evidence
DISSECTION_FILE = "tiny-dissection.json"
NAMED_CATEGORIES = ("part", "object")  # dissect.py's categories that name a detector
CheckpointQuery = Annotated[
    str | None, Query(max_length=64, description="A training checkpoint name (tiny); default: final weights.")
]
LayerQuery = Annotated[str | None, Query(max_length=200, description="Dotted layer name.")]

# Feature visualizations computed on demand (alexnet, or units without a shipped sprite).
_FEATVIS: dict[tuple[str, str, str, int], bytes] = {}
_FEATVIS_LOCK = threading.Lock()
FEATVIS_CACHE_UNITS = 512
ON_DEMAND_STEPS = 96
FEATVIS_SLICE_STEPS = 4  # steps per turn on the inference thread (well under a second)


def parse_checkpoint(entry: ModelEntry, raw: str | None) -> str | None:
    """A checkpoint name the model has, or None for the served weights; else 422."""
    try:
        return resolve_checkpoint(entry, raw)
    except UnknownCheckpoint as exc:
        raise ProblemError(422, "unknown-checkpoint", str(exc)) from None


def _layer(entry: ModelEntry, name: str) -> str:
    if name not in entry.layers:
        raise ProblemError(
            422, "unknown-layer", f"Unknown layer name. See GET /api/v1/models/{entry.id} for the layer names."
        )
    return name


async def _shapes(entry: ModelEntry, engine: Engine) -> Shapes:
    """Every layer's output shape; measuring them is a forward pass, so it runs on the engine."""
    network, size = entry.network, entry.input_size
    assert network is not None
    known = cached_shapes(network, size)
    return known if known is not None else await engine.run(lambda: layer_shapes(network, size))


def _spatial(shapes: Shapes, name: str) -> None:
    if len(shapes[name]) != 3:
        raise ProblemError(422, "not-spatial", f"Layer {name} has no spatial map; choose a conv layer.")


def _unit(shapes: Shapes, layer: str, channel: int) -> None:
    units = shapes[layer][0]
    if channel >= units:
        raise ProblemError(404, "unknown-unit", f"Layer {layer} has {units} units: channel must be 0..{units - 1}.")


def _tensor(entry: ModelEntry, data: bytes, max_pixels: int) -> Any:
    assert entry.preprocess is not None
    return entry.preprocess(decode_image(data, max_pixels))


# ------------------------------------------------------------------ filters


@router.get("/models/{model_id}/filters", summary="First-layer kernels as an RGB picture atlas")
async def filters(
    entry: AvailableModelDep,
    engine: EngineDep,
    layer: LayerQuery = None,
    checkpoint: CheckpointQuery = None,
    scale: Annotated[int, Query(ge=1, le=16, description="Nearest-neighbour upscaling of each kernel.")] = 4,
) -> Response:
    name = _layer(entry, layer or "features.0")
    chosen = parse_checkpoint(entry, checkpoint)

    def work() -> dict[str, Any]:
        result = filter_atlas(network_for(entry, chosen), name, scale)
        return {
            "model": entry.id,
            "layer": name,
            "checkpoint": chosen,
            "shape": list(result.shape),
            "norms": [round(n, 5) for n in result.norms],
            "scale": result.scale,
            "normalization": "per filter, symmetric around 0: grey is 0, the largest |weight| is black or full colour",
            "atlas": {
                "png": data_url(png_bytes(result.atlas)),
                "columns": result.columns,
                "tile": list(result.tile),
            },
        }

    try:
        body = await engine.run(work)
    except NotDrawable:
        raise ProblemError(
            422, "not-drawable", f"Only a convolution on the RGB input can be drawn as pictures; {name} is not."
        ) from None
    return Response(json.dumps(body, separators=(",", ":")), media_type="application/json")


# ------------------------------------------------------------------ Grad-CAM


@router.post(
    "/models/{model_id}/gradcam",
    summary="Grad-CAM: where the evidence for a class lies in the picture",
    openapi_extra=IMAGE_BODY,
)
async def gradcam(
    request: Request,
    entry: AvailableModelDep,
    engine: EngineDep,
    settings: SettingsDep,
    class_index: Annotated[int | None, Query(ge=0, description="Class to explain; default: the top one.")] = None,
    layer: LayerQuery = None,
) -> Response:
    name = _layer(entry, layer or DEFAULT_CAM_LAYER)
    _spatial(await _shapes(entry, engine), name)
    if class_index is not None and class_index >= len(entry.classes):
        raise ProblemError(
            422, "unknown-class", f"class_index must be 0..{len(entry.classes) - 1} for model {entry.id}."
        )
    engine.admit()
    data = await read_image_bytes(request, settings.max_body_bytes)

    def work() -> dict[str, Any]:
        assert entry.network is not None
        tensor = _tensor(entry, data, settings.max_pixels)
        cam, index = compute_gradcam(entry.network, tensor, name, class_index)
        height, width = int(tensor.shape[1]), int(tensor.shape[2])
        return {
            "model": entry.id,
            "class_index": index,
            "label": entry.classes[index],
            "layer": name,
            "map": {"shape": list(cam.shape), "values": [round(float(v), 5) for v in cam.ravel()]},
            "heatmap": data_url(png_bytes(heatmap_rgba(cam, height, width))),
            "heatmap_size": [height, width],
        }

    body = await engine.run(work)
    return Response(json.dumps(body, separators=(",", ":")), media_type="application/json", headers=NO_STORE)


# ------------------------------------------------------------------ guided backprop


@router.post(
    "/models/{model_id}/units/{layer}/{channel}/backprop",
    summary="Guided backpropagation from one unit to the pixels (a PNG at the input's size)",
    openapi_extra=IMAGE_BODY,
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}},
)
async def backprop(
    request: Request,
    entry: AvailableModelDep,
    engine: EngineDep,
    settings: SettingsDep,
    layer: Annotated[str, PathParam(max_length=200)],
    channel: Annotated[int, PathParam(ge=0)],
    objective: Annotated[
        Literal["max", "sum"], Query(description="The unit's largest activation, or its whole map summed.")
    ] = "max",
) -> Response:
    name = _layer(entry, layer)
    _unit(await _shapes(entry, engine), name, channel)
    engine.admit()
    data = await read_image_bytes(request, settings.max_body_bytes)

    def work() -> bytes:
        assert entry.network is not None
        gradient = guided_backprop(entry.network, _tensor(entry, data, settings.max_pixels), name, channel, objective)
        return png_bytes(signed_image(gradient))

    return Response(await engine.run(work), media_type="image/png", headers=NO_STORE)


# ------------------------------------------------------------------ units


def _dissection(entry: ModelEntry) -> dict[str, list[dict[str, Any]]]:
    if entry.weights_source is None or not entry.trained:
        return {}
    return _read_dissection_cached(str(Path(entry.weights_source).parent / DISSECTION_FILE))


_DISSECTIONS: dict[str, tuple[float, dict[str, list[dict[str, Any]]]]] = {}


def _read_dissection_cached(path: str) -> dict[str, list[dict[str, Any]]]:
    # Re-read when the file changes (the dissect job may rewrite it while we serve).
    stamp = Path(path).stat().st_mtime if Path(path).is_file() else -1.0
    cached = _DISSECTIONS.get(path)
    if cached is None or cached[0] != stamp:
        cached = (stamp, read_dissection(Path(path)))
        _DISSECTIONS[path] = cached
    return cached[1]


def _unit_label(record: dict[str, Any] | None) -> dict[str, Any]:
    if record is None:
        return {"label": None, "iou": None, "named": False, "description": None}
    keep = ("kind", "category", "quantile", "osi", "preferred_deg", "colour")
    named = record.get("category") in NAMED_CATEGORIES
    return {
        "label": record.get("label"),
        "iou": record.get("iou"),
        "named": named,
        "description": _describe(record, named),
        **{k: record[k] for k in keep if k in record},
    }


def _taught_units(entry: ModelEntry, name: str) -> dict[int, str]:
    """channel -> part type, for the units of layer ``name`` that training gave a part type
    to find (the recipe's assigned readout); empty for every other layer and model."""
    taught = entry.taught_parts or {}
    if not taught.get("units") or entry.layers[name].title.split(" ")[0] != f"conv{taught['layer']}":
        return {}
    return {int(k): p for p, k in taught["units"].items()}


def _describe(record: dict[str, Any], named: bool) -> str | None:
    """The words the page can show: "wheel detector", "edge/colour unit", or None."""
    if named and record.get("label"):
        return f"{record['label']} detector"
    if record.get("category") == "edge/colour":
        return "edge/colour unit"
    return None


@router.get("/models/{model_id}/units", summary="Every unit of a layer with its dissection label")
async def list_units(
    entry: AvailableModelDep,
    engine: EngineDep,
    layer: LayerQuery = None,
    named: Annotated[bool, Query(description="Only units dissection names as part/object detectors.")] = False,
    concept: Annotated[str | None, Query(max_length=64, description="Only units labelled with this concept.")] = None,
    sprites: Annotated[bool, Query(description="Include the layer's shipped sprites (data URLs).")] = False,
) -> dict[str, Any]:
    name = _layer(entry, layer or entry.default_layers[-1])
    count = (await _shapes(entry, engine))[name][0]
    records = {r["channel"]: r for r in _dissection(entry).get(name, [])}
    taught = _taught_units(entry, name)
    units = []
    for channel in range(count):
        info = {"channel": channel, **_unit_label(records.get(channel)), "taught": taught.get(channel)}
        if named and not info["named"]:
            continue
        if concept is not None and info["label"] != concept:
            continue
        units.append(info)
    body: dict[str, Any] = {
        "model": entry.id,
        "layer": name,
        "title": entry.layers[name].title,
        "unit_count": count,
        "dissected": bool(records),
        "units": units,
    }
    if sprites:
        body["sprites"] = {kind: _sprite_json(entry, kind, name) for kind in ("featvis", "patches")}
    return body


def _sprite_json(entry: ModelEntry, kind: str, layer: str) -> dict[str, Any] | None:
    # The file as shipped (the patches are a JPEG): no decoding and re-encoding per request.
    found = assets.sprite_bytes(entry.weights_source, kind, layer)
    if found is None:
        return None
    raw, media, meta = found
    return {
        "url": f"data:{media};base64," + base64.b64encode(raw).decode("ascii"),
        "columns": meta["columns"],
        "tile": meta["tile"],
        "units": meta["units"],
    }


async def _featvis_png(
    entry: ModelEntry, engine: Engine, request: Request, layer: str, channel: int
) -> tuple[bytes, str]:
    shipped = await engine.run(lambda: assets.unit_featvis(entry.weights_source, layer, channel))
    if shipped is not None:
        return png_bytes(np.ascontiguousarray(shipped)), "precomputed"
    key = (entry.id, entry.weights_source or "", layer, channel)
    with _FEATVIS_LOCK:
        cached = _FEATVIS.get(key)
    if cached is not None:
        return cached, "computed"
    network = entry.network
    assert network is not None
    # AlexNet at 112 px costs ~10x the tiny model per step (seconds per unit). The run goes
    # in short slices through the engine, so pictures queued meanwhile are served between
    # them rather than after the whole run; a client that leaves stops it.
    size = 64 if entry.input_size <= 192 else 112
    config = VisConfig(size=size, steps=ON_DEMAND_STEPS)
    run = await engine.run(lambda: Visualization(network, layer, [channel], entry.mean, entry.std, config))
    while not await engine.run(lambda: run.step(FEATVIS_SLICE_STEPS)):
        if await request.is_disconnected():
            raise ProblemError(408, "client-left", "The client left before the visualization was done.")
    cached = await engine.run(lambda: png_bytes(run.pixels()[0]))
    with _FEATVIS_LOCK:
        if len(_FEATVIS) >= FEATVIS_CACHE_UNITS:
            _FEATVIS.pop(next(iter(_FEATVIS)))
        _FEATVIS[key] = cached
    return cached, "computed"


@router.get("/models/{model_id}/units/{layer}/{channel}", summary="One unit: label, feature visualization, top patches")
async def get_unit(
    request: Request,
    entry: AvailableModelDep,
    engine: EngineDep,
    layer: Annotated[str, PathParam(max_length=200)],
    channel: Annotated[int, PathParam(ge=0)],
) -> dict[str, Any]:
    name = _layer(entry, layer)
    _unit(await _shapes(entry, engine), name, channel)
    record = {r["channel"]: r for r in _dissection(entry).get(name, [])}.get(channel)
    png, source = await _featvis_png(entry, engine, request, name, channel)
    strip = assets.unit_patches(entry.weights_source, name, channel)
    patches = None
    if strip is not None:
        pixels, values = strip
        patches = {
            "png": data_url(png_bytes(np.ascontiguousarray(pixels))),
            "count": len(values),
            "tile": [int(pixels.shape[0]), int(pixels.shape[0])],
            "activations": values,
        }
    return {
        "model": entry.id,
        "layer": name,
        "title": entry.layers[name].title,
        "channel": channel,
        "receptive_field": entry.layers[name].receptive_field,
        **_unit_label(record),
        "taught": _taught_units(entry, name).get(channel),
        "featvis": {"png": data_url(png), "source": source},
        "patches": patches,
    }

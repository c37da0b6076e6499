"""Typed dependencies the routes ask for: settings, the engine, a model entry, and each
route's parameters parsed and checked against the model.

An unknown or unavailable model is answered first (404, 503). A route's other parameters
are parsed by one dependency that declares them all, so FastAPI validates every one of
them (422 "invalid-parameter") before any check against the model runs (422 unknown
layer, checkpoint or class, 404 unknown unit), whatever else the request gets wrong. All
async: they only read app state (or wait on the engine), and a sync dependency would cost
a hop to the thread pool on every request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Path, Query, Request

from app.errors import ProblemError
from app.inference import Engine
from app.pipeline import Format, Options, view_options
from app.settings import Settings
from models.explain.guided import Objective
from models.units import Shapes, cached_shapes, layer_shapes
from models.zoo.checkpoints import UnknownCheckpoint, resolve_checkpoint
from models.zoo.registry import ModelEntry

CheckpointQuery = Annotated[
    str | None, Query(max_length=64, description="A training checkpoint name (tiny); default: final weights.")
]
LayerQuery = Annotated[str | None, Query(max_length=200, description="Dotted layer name.")]
LayerPath = Annotated[str, Path(max_length=200)]
ChannelPath = Annotated[int, Path(ge=0)]


async def get_app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


async def get_registry(request: Request) -> dict[str, ModelEntry]:
    registry: dict[str, ModelEntry] = request.app.state.registry
    return registry


async def get_model(
    request: Request, model_id: Annotated[str, Path(max_length=64, description="Model id, e.g. tiny.")]
) -> ModelEntry:
    registry: dict[str, ModelEntry] = request.app.state.registry
    entry = registry.get(model_id)
    if entry is None:
        raise ProblemError(404, "unknown-model", f"There is no model with that id; known: {', '.join(registry)}.")
    if not entry.loaded:  # listed at start, built by the first request that needs it (app/firstuse.py)
        await request.app.state.first_use.ready(entry, request.app.state.engine)
    return entry


async def get_available_model(entry: Annotated[ModelEntry, Depends(get_model)]) -> ModelEntry:
    if not entry.available:
        raise ProblemError(
            404 if entry.network is None else 503,
            "model-unavailable",
            f"Model '{entry.id}' is not available here: {entry.unavailable_reason} "
            f"Get it with: {entry.how_to_get}",
        )
    return entry


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
EngineDep = Annotated[Engine, Depends(get_engine)]
RegistryDep = Annotated[dict[str, ModelEntry], Depends(get_registry)]
ModelDep = Annotated[ModelEntry, Depends(get_model)]
AvailableModelDep = Annotated[ModelEntry, Depends(get_available_model)]


# ------------------------------------------------------------------ checks against the model


def known_layer(entry: ModelEntry, name: str) -> str:
    if name not in entry.layers:
        raise ProblemError(
            422, "unknown-layer", f"Unknown layer name. See GET /api/v1/models/{entry.id} for the layer names."
        )
    return name


def known_layers(entry: ModelEntry, raw: str | None) -> tuple[str, ...]:
    """Comma-separated layer names (blank: the model's defaults), each one the model has."""
    if raw is None or not raw.strip():
        return entry.default_layers
    names = tuple(dict.fromkeys(n.strip() for n in raw.split(",") if n.strip()))
    unknown = [n for n in names if n not in entry.layers]
    if unknown:
        shown = ", ".join(n for n in unknown if n.replace(".", "").replace("_", "").isalnum())
        raise ProblemError(
            422,
            "unknown-layer",
            f"Unknown layer name(s){': ' + shown[:200] if shown else ''}. "
            f"See GET /api/v1/models/{entry.id} for the layer names.",
        )
    return names


def known_checkpoint(entry: ModelEntry, raw: str | None) -> str | None:
    """A checkpoint name the model has, or None for the served weights; else 422."""
    try:
        return resolve_checkpoint(entry, raw)
    except UnknownCheckpoint as exc:
        raise ProblemError(422, "unknown-checkpoint", str(exc)) from None


async def model_shapes(entry: ModelEntry, engine: Engine) -> Shapes:
    """Every layer's output shape; measuring them is a forward pass, so it runs on the engine."""
    network, size = entry.network, entry.input_size
    assert network is not None
    known = cached_shapes(network, size)
    return known if known is not None else await engine.run(lambda: layer_shapes(network, size))


def known_unit(shapes: Shapes, layer: str, channel: int) -> int:
    units = shapes[layer][0]
    if channel >= units:
        raise ProblemError(404, "unknown-unit", f"Layer {layer} has {units} units: channel must be 0..{units - 1}.")
    return channel


# ------------------------------------------------------------------ each route's parameters


@dataclass(frozen=True)
class FiltersArgs:
    entry: ModelEntry
    layer: str
    checkpoint: str | None
    scale: int


async def filters_args(
    entry: AvailableModelDep,
    layer: LayerQuery = None,
    checkpoint: CheckpointQuery = None,
    scale: Annotated[int, Query(ge=1, le=16, description="Nearest-neighbour upscaling of each kernel.")] = 4,
) -> FiltersArgs:
    if layer is None and entry.filters_layer is None:
        raise ProblemError(
            422, "not-drawable", f"Model {entry.id}'s first layer is not a convolution on the RGB input: "
            "it has no filters to draw as pictures."
        )
    name = known_layer(entry, layer or entry.filters_layer or "")
    return FiltersArgs(entry, name, known_checkpoint(entry, checkpoint), scale)


@dataclass(frozen=True)
class GradcamArgs:
    entry: ModelEntry
    layer: str
    class_index: int | None  # None: the top class


async def gradcam_args(
    entry: AvailableModelDep,
    engine: EngineDep,
    class_index: Annotated[int | None, Query(ge=0, description="Class to explain; default: the top one.")] = None,
    layer: LayerQuery = None,
) -> GradcamArgs:
    if layer is None and entry.cam_layer is None:
        raise ProblemError(422, "not-spatial", f"Model {entry.id} has no spatial layer for Grad-CAM.")
    name = known_layer(entry, layer or entry.cam_layer or "")
    if len((await model_shapes(entry, engine))[name]) != 3:
        raise ProblemError(422, "not-spatial", f"Layer {name} has no spatial map; choose a conv layer.")
    if class_index is not None and class_index >= len(entry.classes):
        raise ProblemError(
            422, "unknown-class", f"class_index must be 0..{len(entry.classes) - 1} for model {entry.id}."
        )
    return GradcamArgs(entry, name, class_index)


@dataclass(frozen=True)
class UnitArgs:
    entry: ModelEntry
    layer: str
    channel: int


async def unit_args(
    layer: LayerPath, channel: ChannelPath, entry: AvailableModelDep, engine: EngineDep
) -> UnitArgs:
    name = known_layer(entry, layer)
    return UnitArgs(entry, name, known_unit(await model_shapes(entry, engine), name, channel))


@dataclass(frozen=True)
class BackpropArgs:
    unit: UnitArgs
    objective: Objective


async def backprop_args(
    layer: LayerPath,
    channel: ChannelPath,
    entry: AvailableModelDep,
    engine: EngineDep,
    objective: Annotated[
        Objective, Query(description="The unit's largest activation, or its whole map summed.")
    ] = "max",
) -> BackpropArgs:
    return BackpropArgs(await unit_args(layer, channel, entry, engine), objective)


@dataclass(frozen=True)
class UnitsArgs:
    entry: ModelEntry
    layer: str
    count: int  # the layer's units
    named: bool
    concept: str | None
    sprites: bool


async def units_args(
    entry: AvailableModelDep,
    engine: EngineDep,
    layer: LayerQuery = None,
    named: Annotated[bool, Query(description="Only units dissection names as part/object detectors.")] = False,
    concept: Annotated[str | None, Query(max_length=64, description="Only units labelled with this concept.")] = None,
    sprites: Annotated[bool, Query(description="Include the layer's shipped sprites (data URLs).")] = False,
) -> UnitsArgs:
    name = known_layer(entry, layer or (entry.default_layers[-1] if entry.default_layers else ""))
    count = (await model_shapes(entry, engine))[name][0]
    return UnitsArgs(entry, name, count, named, concept, sprites)


@dataclass(frozen=True)
class ActivationsArgs:
    entry: ModelEntry
    options: Options


async def activations_args(
    entry: AvailableModelDep,
    layers: Annotated[
        str | None,
        Query(
            max_length=2000,
            description="Comma-separated dotted layer names, each answered with all its maps; default: the "
            "model's default view, where a wide layer listed in the model's view_maps carries only its most "
            "active maps (atlas.channels).",
        ),
    ] = None,
    top_k: Annotated[int, Query(ge=1, le=1000, description="How many predictions to return.")] = 5,
    format: Annotated[Format, Query(description="json (atlases) or npz (raw float32 arrays).")] = "json",
    checkpoint: Annotated[
        str | None, Query(max_length=64, description="A training checkpoint (tiny); default: final weights.")
    ] = None,
) -> ActivationsArgs:
    chosen = known_checkpoint(entry, checkpoint)
    top = min(top_k, len(entry.classes))
    # The checkpoint is part of Options, so it is part of the cache key too. A layer asked for
    # by name carries all its maps; the default view may trim its widest (view_options).
    if layers is None or not layers.strip():
        return ActivationsArgs(entry, view_options(entry, top, format, chosen))
    return ActivationsArgs(entry, Options(known_layers(entry, layers), top, format, chosen))


FiltersDep = Annotated[FiltersArgs, Depends(filters_args)]
GradcamDep = Annotated[GradcamArgs, Depends(gradcam_args)]
UnitDep = Annotated[UnitArgs, Depends(unit_args)]
BackpropDep = Annotated[BackpropArgs, Depends(backprop_args)]
UnitsDep = Annotated[UnitsArgs, Depends(units_args)]
ActivationsDep = Annotated[ActivationsArgs, Depends(activations_args)]

"""Typed dependencies the routes ask for: settings, the engine, a model entry.

All async: they only read app state, and a sync dependency would cost a hop to the
thread pool on every request.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request

from app.errors import ProblemError
from app.inference import Engine
from app.settings import Settings
from models.zoo.registry import ModelEntry


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

"""The JSON API, version 1 (README.md, "The API (v1)"). Routes are thin: parse, delegate, answer."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from app.deps import ActivationsDep, EngineDep, ModelDep, RegistryDep, SettingsDep
from app.intake import read_image_bytes
from app.routes.common import IMAGE_BODY, NO_STORE
from app.services.activations import activations_answer

router = APIRouter(prefix="/api/v1", tags=["models"])


@router.get("/models", summary="List every model")
def list_models(registry: RegistryDep, settings: SettingsDep) -> dict[str, Any]:
    return {"default": settings.default_model, "models": [e.summary() for e in registry.values()]}


@router.get("/models/{model_id}", summary="One model, with every layer that can be asked for")
def get_model(entry: ModelDep) -> dict[str, Any]:
    return {**entry.summary(), "all_layers": [info.to_dict() for info in entry.layers.values()]}


@router.post(
    "/models/{model_id}/activations",
    summary="Run the model on one picture and return every layer's maps",
    openapi_extra=IMAGE_BODY,
    response_class=Response,
    responses={200: {"content": {"application/json": {}, "application/x-npz": {}}}},
)
async def activations(request: Request, args: ActivationsDep, engine: EngineDep, settings: SettingsDep) -> Response:
    engine.admit()  # refuse early, before reading the body, when the server is full
    data = await read_image_bytes(request, settings.max_body_bytes)
    result = await activations_answer(engine, args.entry, args.options, data, settings.max_pixels)
    return Response(result.body, media_type=result.media_type, headers=NO_STORE)

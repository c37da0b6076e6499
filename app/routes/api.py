"""The JSON API, version 1 (DESIGN.md section 3). Routes are thin: parse, delegate, answer."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from app.deps import AvailableModelDep, EngineDep, ModelDep, RegistryDep, SettingsDep
from app.errors import ProblemError
from app.inference import Stages, image_key
from app.intake import read_image_bytes
from app.pipeline import Format, Options, finish, infer, prepare
from models.zoo.checkpoints import UnknownCheckpoint, resolve_checkpoint

router = APIRouter(prefix="/api/v1", tags=["models"])

IMAGE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "The picture: a multipart field `image`, or the raw image bytes.",
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["image"],
                    "properties": {"image": {"type": "string", "format": "binary"}},
                }
            },
            "image/*": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}
NO_STORE = {"Cache-Control": "no-store"}


@router.get("/models", summary="List every model")
def list_models(registry: RegistryDep, settings: SettingsDep) -> dict[str, Any]:
    return {"default": settings.default_model, "models": [e.summary() for e in registry.values()]}


@router.get("/models/{model_id}", summary="One model, with every layer that can be asked for")
def get_model(entry: ModelDep) -> dict[str, Any]:
    return {**entry.summary(), "all_layers": [info.to_dict() for info in entry.layers.values()]}


def _parse_layers(raw: str | None, entry: AvailableModelDep) -> tuple[str, ...]:
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


@router.post(
    "/models/{model_id}/activations",
    summary="Run the model on one picture and return every layer's maps",
    openapi_extra=IMAGE_BODY,
    response_class=Response,
    responses={200: {"content": {"application/json": {}, "application/x-npz": {}}}},
)
async def activations(
    request: Request,
    entry: AvailableModelDep,
    engine: EngineDep,
    settings: SettingsDep,
    layers: Annotated[
        str | None,
        Query(max_length=2000, description="Comma-separated dotted layer names; default: conv layers after ReLU."),
    ] = None,
    top_k: Annotated[int, Query(ge=1, le=1000, description="How many predictions to return.")] = 5,
    format: Annotated[Format, Query(description="json (atlases) or npz (raw float32 arrays).")] = "json",
    checkpoint: Annotated[
        str | None, Query(max_length=64, description="A training checkpoint (tiny); default: final weights.")
    ] = None,
) -> Response:
    try:
        chosen = resolve_checkpoint(entry, checkpoint)
    except UnknownCheckpoint as exc:
        raise ProblemError(422, "unknown-checkpoint", str(exc)) from None
    # The checkpoint is part of Options, so it is part of the cache key too.
    options = Options(_parse_layers(layers, entry), min(top_k, len(entry.classes)), format, chosen)
    engine.admit()  # refuse early, before reading the body, when the server is full
    data = await read_image_bytes(request, settings.max_body_bytes)
    key = (image_key(data), entry.id, options)
    cached = engine.cache.get(key)
    if cached is None:
        # Decode and encode on the CPU workers; the forward pass on the inference thread,
        # batched with other pictures waiting for the same model, checkpoint and layers.
        cached = await engine.run_staged(
            Stages(
                before=lambda: prepare(entry, data, settings.max_pixels),
                batch_key=(entry.id, *options.batch_key),
                forward=lambda batch: infer(entry, options, batch, engine.submit),
                after=lambda prepared, inferred: finish(entry, options, prepared, inferred, engine.map),
            )
        )
        engine.cache.put(key, cached)
    return Response(cached.body, media_type=cached.media_type, headers=NO_STORE)  # type: ignore[attr-defined]

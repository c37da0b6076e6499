"""Teaching (README.md, "Teach it"): new classes on a base model's frozen features.

A session is created with its base model and class names, collects examples (pictures in,
features kept), trains a head in the heavy lane (JSON, or progress as server-sent events),
predicts, and can be exported as a .safetensors head and imported again. Routes only wire
the session store (app/teach.py) to the services (app/services/teach.py, teach_train.py).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field, StringConstraints

from app.deps import EngineDep, RegistryDep, SettingsDep, get_available_model, get_model
from app.intake import read_body, read_image_bytes
from app.middleware.clients import current_client
from app.routes.common import IMAGE_BODY, NO_STORE, compact_json
from app.services.teach import (
    MAX_HEAD_BYTES,
    feature_layer,
    imported_head,
    picture_features,
    prediction,
    trained_head,
)
from app.services.teach_train import train_events, train_json
from app.sse import HEADERS as SSE_HEADERS
from app.sse import MEDIA_TYPE as EVENTS
from app.teach import Session, TeachStore
from models.teach.export import head_bytes
from models.teach.names import MAX_CLASSES, MAX_NAME, MIN_CLASSES, PATTERN
from models.zoo.registry import ModelEntry

router = APIRouter(prefix="/api/v1/teach", tags=["teach"])
HEAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "A head exported by GET /api/v1/teach/{session}/export (the raw .safetensors bytes).",
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}


# What the schema can say of a name (models/teach/names.py has every rule).
ClassName = Annotated[str, StringConstraints(min_length=1, max_length=MAX_NAME, pattern=PATTERN)]


class NewSession(BaseModel):
    model: str | None = Field(None, max_length=64, description="The base model's id; default: the page's model.")
    classes: list[ClassName] = Field(
        ..., min_length=MIN_CLASSES, max_length=MAX_CLASSES, json_schema_extra={"uniqueItems": True},
        description='2 to 6 class names, unique ignoring case, e.g. ["mug", "pen"].',
    )


async def get_store(request: Request) -> TeachStore:
    store: TeachStore = request.app.state.teach
    return store


StoreDep = Annotated[TeachStore, Depends(get_store)]


async def get_session(store: StoreDep, session_id: Annotated[str, Path(max_length=64)]) -> Session:
    return store.get(session_id)


SessionDep = Annotated[Session, Depends(get_session)]


async def base_model(request: Request, model_id: str) -> ModelEntry:
    """The served, available entry ``model_id`` (404 unknown, 503 unavailable)."""
    return await get_available_model(await get_model(request, model_id))


def session_json(session: Session, store: TeachStore) -> dict[str, Any]:
    limits = {"examples": store.max_examples, "idle_s": store.idle_s}
    return {"session": session.id, "model": session.model, "classes": list(session.classes),
            "counts": session.counts(), "trained": session.head is not None, "limits": limits}


@router.post("", status_code=201, summary="Open a teaching session on a base model with 2-6 class names")
async def create(request: Request, body: NewSession, store: StoreDep, settings: SettingsDep) -> dict[str, Any]:
    entry = await base_model(request, body.model or settings.default_model)
    return session_json(store.create(entry.id, feature_layer(entry), list(body.classes)), store)


@router.post("/import", status_code=201, summary="Open a session from an exported head (.safetensors)",
             openapi_extra=HEAD_BODY)
async def import_head(request: Request, store: StoreDep, registry: RegistryDep, engine: EngineDep) -> dict[str, Any]:
    head = await imported_head(registry, engine, request.app.state.first_use, await read_body(request, MAX_HEAD_BYTES))
    return session_json(store.create(head.base, head.layer, list(head.classes), head), store)


@router.post("/{session_id}/examples", summary="Add one example picture to a class (only its features are kept)",
             openapi_extra=IMAGE_BODY)
async def add_example(
    request: Request, session: SessionDep, store: StoreDep, engine: EngineDep, settings: SettingsDep,
    label: Annotated[str, Query(min_length=1, max_length=MAX_NAME + 8, description="The class it shows.")],
) -> dict[str, Any]:
    index = session.label_index(label)
    store.room_for_example(session)
    entry = await base_model(request, session.model)
    engine.admit()
    data = await read_image_bytes(request, settings.max_body_bytes)
    picture = await picture_features(engine, entry, session.layer, data, settings.max_pixels)
    return {"session": session.id, "counts": store.add_example(session, index, picture.pooled)}


@router.post("/{session_id}/train", summary="Train the head (Accept: text/event-stream for live progress)",
             response_class=Response, responses={200: {"content": {"application/json": {}, EVENTS: {}}}})
async def train(request: Request, session: SessionDep, engine: EngineDep) -> Response:
    entry = await base_model(request, session.model)
    client, left = current_client.get(), request.is_disconnected
    if EVENTS in request.headers.get("accept", ""):
        events = await train_events(engine, session, entry, client, left)
        return StreamingResponse(events, media_type=EVENTS, headers=SSE_HEADERS)
    return compact_json(await train_json(engine, session, entry, client, left), NO_STORE)


@router.post("/{session_id}/predict", summary="The taught classes for a picture, the units used, the base's answer",
             openapi_extra=IMAGE_BODY)
async def predict(
    request: Request, session: SessionDep, engine: EngineDep, settings: SettingsDep,
    cam: Annotated[bool, Query(description="Also where the evidence for the winner lies (Grad-CAM).")] = False,
) -> Response:
    head = trained_head(session)
    entry = await base_model(request, session.model)
    engine.admit()
    data = await read_image_bytes(request, settings.max_body_bytes)
    picture = await picture_features(engine, entry, head.layer, data, settings.max_pixels, keep_maps=cam)
    return compact_json(prediction(entry, session, picture), NO_STORE)


@router.get("/{session_id}/export", summary="The taught head as a small .safetensors file", response_class=Response,
            responses={200: {"content": {"application/octet-stream": {}}}})
async def export(session: SessionDep) -> Response:
    disposition = f'attachment; filename="layerscope-{session.model}-head.safetensors"'
    headers = {**NO_STORE, "Content-Disposition": disposition}
    return Response(head_bytes(trained_head(session)), media_type="application/octet-stream", headers=headers)


@router.delete("/{session_id}", status_code=204, summary="Forget a session now", response_class=Response)
async def delete(store: StoreDep, session_id: Annotated[str, Path(max_length=64)]) -> Response:
    store.delete(session_id)
    return Response(status_code=204)

"""Explanations beyond feature maps: filters, Grad-CAM, guided backprop, units.

Routes only take their parsed parameters (app/deps.py), delegate to app/services on the
inference thread, and answer. Layers are dotted ``named_modules()`` names, units are
channels of a layer's output. Unknown layers and unusable options answer 422, a unit past
the layer's width 404.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from app.deps import BackpropDep, EngineDep, FiltersDep, GradcamDep, SettingsDep, UnitDep, UnitsDep
from app.intake import read_image_bytes
from app.routes.common import IMAGE_BODY, NO_STORE, compact_json
from app.services import units
from app.services.explain import backprop_png, filters_body, gradcam_body
from app.services.featvis import featvis_png

router = APIRouter(prefix="/api/v1", tags=["explanations"])


@router.get("/models/{model_id}/filters", summary="First-layer kernels as an RGB picture atlas")
async def filters(args: FiltersDep, engine: EngineDep) -> Response:
    body = await engine.run(lambda: filters_body(args.entry, args.layer, args.checkpoint, args.scale))
    return compact_json(body)


@router.post(
    "/models/{model_id}/gradcam",
    summary="Grad-CAM: where the evidence for a class lies in the picture",
    openapi_extra=IMAGE_BODY,
)
async def gradcam(request: Request, args: GradcamDep, engine: EngineDep, settings: SettingsDep) -> Response:
    engine.admit()
    data = await read_image_bytes(request, settings.max_body_bytes)
    body = await engine.run(lambda: gradcam_body(args.entry, args.layer, args.class_index, data, settings.max_pixels))
    return compact_json(body, NO_STORE)


@router.post(
    "/models/{model_id}/units/{layer}/{channel}/backprop",
    summary="Guided backpropagation from one unit to the pixels (a PNG at the input's size)",
    openapi_extra=IMAGE_BODY,
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}},
)
async def backprop(request: Request, args: BackpropDep, engine: EngineDep, settings: SettingsDep) -> Response:
    engine.admit()
    data = await read_image_bytes(request, settings.max_body_bytes)
    unit = args.unit
    png = await engine.run(
        lambda: backprop_png(unit.entry, unit.layer, unit.channel, args.objective, data, settings.max_pixels)
    )
    return Response(png, media_type="image/png", headers=NO_STORE)


@router.get("/models/{model_id}/units", summary="Every unit of a layer with its dissection label")
async def list_units(args: UnitsDep) -> dict[str, Any]:
    return units.listing(args.entry, args.layer, args.count, args.named, args.concept, args.sprites)


@router.get("/models/{model_id}/units/{layer}/{channel}", summary="One unit: label, feature visualization, top patches")
async def get_unit(request: Request, args: UnitDep, engine: EngineDep) -> dict[str, Any]:
    featvis = await featvis_png(args.entry, engine, args.layer, args.channel, request.is_disconnected)
    return units.unit_detail(args.entry, args.layer, args.channel, featvis)

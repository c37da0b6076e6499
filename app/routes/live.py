"""Watch it learn: a fresh MiniAlexNet trained in front of the class, streamed as server-sent events.

The route only checks that the server allows live runs and what was asked, then hands over
to app/services/live.py; Stop on the page closes the stream, which stops the run.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from app.deps import EngineDep, SettingsDep
from app.errors import ProblemError
from app.intake import read_image_bytes
from app.middleware.clients import current_client
from app.routes.common import IMAGE_BODY
from app.services.live import LiveGate, live_events, watched_picture
from app.sse import HEADERS, MEDIA_TYPE
from models.training.live import BUDGETS, LONGEST_S, SHORTEST_S, LiveConfig

router = APIRouter(prefix="/api/v1/live", tags=["live training"])
OPTIONAL_PICTURE = {"requestBody": {**IMAGE_BODY["requestBody"], "required": False,
                                    "description": "The picture whose maps are shown as it learns (optional)."}}


@router.post("", summary="Train a fresh MiniAlexNet for 5-180 s; progress as server-sent events",
             response_class=StreamingResponse, responses={200: {"content": {MEDIA_TYPE: {}}}},
             openapi_extra=OPTIONAL_PICTURE)
async def live(
    request: Request, settings: SettingsDep, engine: EngineDep,
    seconds: Annotated[float, Query(ge=SHORTEST_S, le=LONGEST_S, description="How long it trains.")] = 60,
    budget: Annotated[int | None, Query(ge=BUDGETS[0], le=BUDGETS[1],
                                        description="Also train a twin on this many pictures, reused.")] = None,
) -> StreamingResponse:
    if not settings.live_training:
        raise ProblemError(403, "live-training-off", "This server does not run live training "
                           "(the operator turns it on with LAYERSCOPE_LIVE_TRAINING=1).")
    config = LiveConfig(seconds=seconds, budget=budget)
    data = await read_image_bytes(request, settings.max_body_bytes)
    picture = await engine.run(lambda: watched_picture(data, settings.max_pixels, config.recipe().input_size))
    gate: LiveGate = request.app.state.live
    events = await live_events(engine, gate, config, picture, current_client.get(), request.is_disconnected)
    return StreamingResponse(events, media_type=MEDIA_TYPE, headers=HEADERS)

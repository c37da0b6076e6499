"""Server-sent events: how a long job's progress reaches the page while it runs.

An event is ``event: <kind>`` and one line of compact JSON. A job that fails after the
stream has begun cannot change the answer's status any more, so its problem (the same RFC
9457 fields as every error answer) arrives as an ``error`` event instead.
"""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

from app.errors import PROBLEM_TYPE, ProblemError

MEDIA_TYPE = "text/event-stream"
# No cache may keep a stream, and a proxy must pass each event on as it comes.
HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}


def event(kind: str, data: dict[str, Any]) -> str:
    """One event of ``kind`` carrying ``data``."""
    return f"event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def problem_event(exc: ProblemError) -> str:
    """``exc`` as the stream's closing ``error`` event."""
    problem = {"type": PROBLEM_TYPE + exc.slug, "title": HTTPStatus(exc.status).phrase, "status": exc.status}
    return event("error", {**problem, "detail": exc.detail})

"""Server-sent events: how a long job's progress reaches the page while it runs.

An event is ``event: <kind>`` and one line of compact JSON. A job that fails after the
stream has begun cannot change the answer's status any more, so its problem (the same RFC
9457 fields as every error answer) arrives as an ``error`` event instead. So a stream's
places (a heavy-lane job, a one-at-a-time lock) are taken before it begins, while a refusal
can still be a plain problem answer (:func:`admitted`).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from http import HTTPStatus
from typing import Any

import anyio

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


async def admitted(
    places: Sequence[AbstractAsyncContextManager[Any]], body: Callable[[list[Any]], AsyncIterator[str]]
) -> AsyncIterator[str]:
    """Enter ``places`` now (a refusal raises here, before any answer), then the stream of
    ``body(what they gave)``; a problem on the way ends it as an ``error`` event, and the
    places are left however the stream ends, cancelled by a client that left included."""
    stack = AsyncExitStack()
    try:
        held = [await stack.enter_async_context(place) for place in places]
    except BaseException:
        await stack.aclose()
        raise

    async def stream() -> AsyncIterator[str]:
        try:
            async for item in body(held):
                yield item
        except ProblemError as exc:
            yield problem_event(exc)
        finally:
            with anyio.CancelScope(shield=True):  # still give the places back when cancelled
                await stack.aclose()

    return stream()

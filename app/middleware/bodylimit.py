"""Refuse bodies over the cap with 413 before they are held in memory.

FastAPI has no body limit. This pure ASGI middleware refuses a declared Content-Length
over the cap without reading a byte, and counts the bytes of every ``http.request``
message as they arrive, so a chunked body or one whose Content-Length lies is cut off as
soon as it passes the cap: at most one network chunk beyond it is ever in memory.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import problem_response
from app.middleware.early import Guard

SLUG = "body-too-large"


def _detail(limit: int) -> str:
    return f"The upload is larger than {limit} bytes ({limit / 1048576:g} MiB); send a smaller picture."


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length" and value.isdigit():
            return int(value)
    return None


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _declared_length(scope)
        if declared is not None and declared > self.max_bytes:
            # Honest and too big: answer now, the app never runs and nothing is read.
            headers = {"Connection": "close"}
            await problem_response(413, _detail(self.max_bytes), SLUG, headers)(scope, receive, send)
            return
        guard = Guard(scope, send)
        received = 0

        async def receive_counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    await guard.refuse(413, SLUG, _detail(self.max_bytes))
            return message

        await guard.run(self.app, receive_counted)

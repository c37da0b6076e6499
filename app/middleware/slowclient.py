"""Cut off uploads that trickle in slower than a minimum rate (408).

A client that sends a body a few bytes at a time would otherwise keep a connection and a
growing buffer for as long as it likes. After a grace period the body must keep an
average of ``min_rate`` bytes per second since the request began; the next chunk is
awaited only until the moment the average would fall below that, then the request is
answered 408 and the app stops reading. Reading happens on the event loop, and the
engine counts a request only once its body is complete, so a slow body never holds the
model or an admission slot.
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.middleware.early import Guard

SLUG = "slow-upload"


class SlowBodyMiddleware:
    def __init__(self, app: ASGIApp, min_rate: int, grace_s: float) -> None:
        self.app = app
        self.min_rate = min_rate
        self.grace_s = grace_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.min_rate <= 0:
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        start = loop.time()
        received = 0
        complete = False
        guard = Guard(scope, send)
        detail = (
            f"The upload arrived too slowly (under {self.min_rate} bytes per second on average); "
            "try again on a faster connection."
        )

        async def receive_timed() -> Message:
            nonlocal received, complete
            if complete:
                return await receive()  # the body is in; later receives wait for a disconnect
            # The moment the average rate would drop below min_rate (never before the grace).
            deadline = start + max(self.grace_s, received / self.min_rate)
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                await guard.refuse(408, SLUG, detail)
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                complete = not message.get("more_body", False)
            else:
                complete = True
            return message

        await guard.run(self.app, receive_timed)

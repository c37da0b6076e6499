"""Answering a request from inside its body stream, before the app has replied.

A middleware that watches the body (its size, its speed) finds the problem while the app
is awaiting ``receive()``. It answers at once through the real ``send``, then raises
:class:`Aborted` into the app so the app stops reading; whatever the app sends after that
(its own handler's answer to the exception) is dropped, so the client gets exactly one
response whatever the route does with the error.
"""

from __future__ import annotations

from typing import NoReturn

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import ProblemError, problem_response


class Aborted(ProblemError):
    """Raised into the app once a middleware has answered; a ProblemError so that, if the
    app's handlers see it first, they treat it as an expected 4xx (no 500, no log noise)."""


class Guard:
    """Wraps ``send`` so a middleware can answer first and silence the app afterwards."""

    def __init__(self, scope: Scope, send: Send) -> None:
        self.scope = scope
        self._send = send
        self.started = False
        self.answered = False

    async def send(self, message: Message) -> None:
        if self.answered:
            return  # the middleware already answered this request
        if message["type"] == "http.response.start":
            self.started = True
        await self._send(message)

    async def answer(self, response: Response) -> bool:
        """Send ``response`` unless the app has begun its own; True if it was sent."""
        if self.started or self.answered:
            return False
        self.answered = True
        await response(self.scope, _nothing_to_receive, self._send)
        return True

    async def refuse(self, status: int, slug: str, detail: str) -> NoReturn:
        """Answer with a problem (and close the connection), then stop the app reading."""
        await self.answer(problem_response(status, detail, slug, {"Connection": "close"}))
        raise Aborted(status, slug, detail)

    async def run(self, app: ASGIApp, receive: Receive) -> None:
        """Run ``app`` with the watched ``receive`` and this guard's ``send``; once the guard
        has answered, the Aborted it raised into the app ends the request quietly."""
        try:
            await app(self.scope, receive, self.send)
        except Aborted:
            if not self.answered:
                raise


async def _nothing_to_receive() -> Message:
    # Our own small responses never read the request.
    return {"type": "http.disconnect"}

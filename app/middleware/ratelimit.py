"""Per-client rate limits on the requests that make the model work: 429 with Retry-After.

Each client has a token bucket holding a minute's worth of requests, refilled at
``per_minute / 60`` tokens a second. Clients are told apart as ``app/middleware/clients.py``
says: by address (``X-Forwarded-For`` only from a trusted proxy), or by a configured API
key (``X-API-Key``), which gets its own, larger bucket. Every request that makes the model
work counts: API POSTs, and the GETs of a model's filters and of one unit (whose picture
may be computed on demand). Health probes, pages, static files, the docs and the API's
other reads are never limited. The buckets live in the app's limit store (``app/limits/``):
this process's memory, or Redis shared by every replica.
"""

from __future__ import annotations

import math

from starlette.types import ASGIApp, Receive, Scope, Send

from app.errors import problem_response
from app.limits import LimitStore
from app.limits.store import ANONYMOUS_RATE, KEYED_RATE
from app.middleware.clients import KEYED, ClientIdentity, is_model_work


class RateLimitMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        store: LimitStore,
        anonymous_per_minute: int,
        keyed_per_minute: int,
        api_keys: str = "",
        trusted_proxies: str = "",
    ) -> None:
        self.app = app
        self.store = store
        self.anonymous = anonymous_per_minute  # 0 = off
        self.keyed = keyed_per_minute
        self.identity = ClientIdentity(api_keys, trusted_proxies)

    async def _wait(self, scope: Scope) -> float:
        client = self.identity(scope)
        bucket, per_minute = (KEYED_RATE, self.keyed) if client.startswith(KEYED) else (ANONYMOUS_RATE, self.anonymous)
        return 0.0 if per_minute <= 0 else await self.store.take(bucket, client, per_minute)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        wait = await self._wait(scope) if is_model_work(scope) else 0.0
        if wait <= 0.0:
            await self.app(scope, receive, send)
            return
        retry = max(1, math.ceil(wait))
        detail = f"Too many requests from this client; try again in {retry} s."
        await problem_response(429, detail, "rate-limited", {"Retry-After": str(retry)})(scope, receive, send)

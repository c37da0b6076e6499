"""Per-client rate limits on the requests that make the model work: 429 with Retry-After.

Each client has a token bucket holding a minute's worth of requests, refilled at
``per_minute / 60`` tokens a second. Clients are told apart as ``app/middleware/clients.py``
says: by address (``X-Forwarded-For`` only from a trusted proxy), or by a configured API
key (``X-API-Key``), which gets its own, larger bucket. Every request that makes the model
work counts: API POSTs, and the GETs of a model's filters and of one unit (whose picture
may be computed on demand). Health probes, pages, static files, the docs and the API's
other reads are never limited.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

from app.errors import problem_response
from app.middleware.clients import KEYED, ClientIdentity, is_model_work


@dataclass
class _Bucket:
    tokens: float
    stamp: float


class TokenBuckets:
    """One token bucket per key, at most ``max_clients`` kept (least recently seen go first)."""

    def __init__(
        self, per_minute: int, max_clients: int = 10_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.max_clients = max_clients
        self.clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def take(self, key: str) -> float:
        """Spend one token: 0.0 if allowed, else the seconds until a token is available."""
        now = self.clock()
        bucket = self._buckets.pop(key, None) or _Bucket(self.capacity, now)
        bucket.tokens = min(self.capacity, bucket.tokens + (now - bucket.stamp) * self.rate)
        bucket.stamp = now
        self._buckets[key] = bucket  # most recently seen last
        while len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate

    def __len__(self) -> int:
        return len(self._buckets)


class RateLimitMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        anonymous_per_minute: int,
        keyed_per_minute: int,
        api_keys: str = "",
        trusted_proxies: str = "",
    ) -> None:
        self.app = app
        self.anonymous = TokenBuckets(anonymous_per_minute) if anonymous_per_minute > 0 else None
        self.keyed = TokenBuckets(keyed_per_minute) if keyed_per_minute > 0 else None
        self.identity = ClientIdentity(api_keys, trusted_proxies)

    def _wait(self, scope: Scope) -> float:
        client = self.identity(scope)
        buckets = self.keyed if client.startswith(KEYED) else self.anonymous
        return 0.0 if buckets is None else buckets.take(client)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        wait = self._wait(scope) if is_model_work(scope) else 0.0
        if wait <= 0.0:
            await self.app(scope, receive, send)
            return
        retry = max(1, math.ceil(wait))
        detail = f"Too many requests from this client; try again in {retry} s."
        await problem_response(429, detail, "rate-limited", {"Retry-After": str(retry)})(scope, receive, send)

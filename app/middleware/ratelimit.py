"""Per-client rate limits on the API's POST endpoints: 429 with Retry-After.

Each client has a token bucket holding a minute's worth of requests, refilled at
``per_minute / 60`` tokens a second. Anonymous clients are told apart by address; a
client sending a configured API key (``X-API-Key``) gets its own, larger bucket. An
unknown key is treated as no key, so inventing keys buys nothing.

``X-Forwarded-For`` is believed only when the connection comes from a configured trusted
proxy, and then only as far as the first hop that is not itself a trusted proxy
(read from the right, where the proxies append); otherwise anyone could claim a fresh
address per request. Health probes, pages and static files are never limited.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

from app.errors import problem_response

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


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


def parse_networks(spec: str) -> list[Network]:
    """``"10.0.0.1, 192.168.0.0/16"`` -> networks (a bare address is a /32 or /128)."""
    return [ipaddress.ip_network(part.strip(), strict=False) for part in spec.split(",") if part.strip()]


def _in(address: str, networks: Iterable[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


def client_address(scope: Scope, trusted: list[Network]) -> str:
    """The address to limit by: the peer, or what trusted proxies say the peer was."""
    client = scope.get("client")
    peer = client[0] if client else "unknown"
    if not trusted or not _in(peer, trusted):
        return peer
    forwarded = b",".join(v for k, v in scope.get("headers", ()) if k == b"x-forwarded-for")
    hops = [h.strip() for h in forwarded.decode("latin-1").split(",") if h.strip()]
    for hop in reversed(hops):
        if not _in(hop, trusted):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return peer  # garbage where the proxy should have written an address
    return peer


class RateLimitMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        anonymous_per_minute: int,
        keyed_per_minute: int,
        api_keys: str = "",
        trusted_proxies: str = "",
        prefix: str = "/api/",
    ) -> None:
        self.app = app
        self.prefix = prefix
        self.anonymous = TokenBuckets(anonymous_per_minute) if anonymous_per_minute > 0 else None
        self.keyed = TokenBuckets(keyed_per_minute) if keyed_per_minute > 0 else None
        self.api_keys = [k.strip().encode() for k in api_keys.split(",") if k.strip()]
        self.trusted = parse_networks(trusted_proxies)

    def _known_key(self, scope: Scope) -> bytes | None:
        for name, value in scope.get("headers", ()):
            if name == b"x-api-key":
                # Compare every key in constant time: timing must not reveal a prefix.
                matches = [hmac.compare_digest(value, key) for key in self.api_keys]
                return value if any(matches) else None
        return None

    def _wait(self, scope: Scope) -> float:
        key = self._known_key(scope)
        if key is not None:
            if self.keyed is None:
                return 0.0
            return self.keyed.take("key:" + hashlib.sha256(key).hexdigest())
        if self.anonymous is None:
            return 0.0
        return self.anonymous.take("ip:" + client_address(scope, self.trusted))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limited = (
            scope["type"] == "http" and scope["method"] == "POST" and scope["path"].startswith(self.prefix)
        )
        wait = self._wait(scope) if limited else 0.0
        if wait <= 0.0:
            await self.app(scope, receive, send)
            return
        retry = max(1, math.ceil(wait))
        detail = f"Too many requests from this client; try again in {retry} s."
        await problem_response(429, detail, "rate-limited", {"Retry-After": str(retry)})(scope, receive, send)

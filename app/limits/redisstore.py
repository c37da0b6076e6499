"""The limits counted in Redis, so that every replica spends from the same allowance.

Each operation is one Lua script, which Redis runs atomically, on Redis's own clock
(``TIME``), so replicas whose clocks differ still agree:

- a token bucket is a hash (tokens, stamp) that expires once it would be full again,
  so clients that went quiet cost Redis nothing;
- a client's held places of one kind are a sorted set of lease ids scored by when each
  lease expires. Taking a place first drops the expired leases, then counts the rest.
  A replica refreshes the leases it holds every third of ``lease_s``, and gives each back
  when its request ends. A replica that dies (killed, out of memory, its node gone)
  refreshes nothing: its leases lapse within ``lease_s`` and the places are free again,
  so a dead replica never leaves a client locked out.

When Redis does not answer (down, unreachable, too slow: ``timeout_s``), the limits fail
open to this replica's own memory counts, with a warning in the log: every client is
still limited, per replica, and nobody is refused because the limits' bookkeeping is
away. Redis is asked again every ``retry_s``; from then on the counts are shared again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from app.limits.memory import MemoryStore
from app.limits.store import Lease

log = logging.getLogger("layerscope")
PREFIX = "layerscope:"

TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local saved = redis.call('HMGET', KEYS[1], 'tokens', 'stamp')
local tokens = tonumber(saved[1]) or capacity
local stamp = tonumber(saved[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - stamp) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.6f', tokens), 'stamp', string.format('%.6f', now))
redis.call('PEXPIRE', KEYS[1], math.ceil((capacity - tokens) / rate * 1000) + 1000)
return string.format('%.6f', wait)
"""

ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease_ms = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if tonumber(ARGV[1]) > 0 and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now + lease_ms, ARGV[2])
redis.call('PEXPIRE', KEYS[1], lease_ms)
return 1
"""

REFRESH = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease_ms = tonumber(ARGV[1])
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], 'XX', now + lease_ms, ARGV[i]) end
redis.call('PEXPIRE', KEYS[1], lease_ms)
return 1
"""

# What a Redis that does not answer raises: its own errors, a refused or reset
# connection, a timeout.
UNANSWERED = (RedisError, OSError, TimeoutError)


def shown(url: str) -> str:
    """``url`` without its password, for the log."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}{parts.path}"


class RedisLease:
    def __init__(self, store: RedisStore, key: str, lease_id: str) -> None:
        self.store = store
        self.key = key
        self.id = lease_id
        self._released = False

    async def release(self) -> None:
        if self._released:
            return
        self._released = True
        await self.store._release(self)


class RedisStore:
    """Token buckets and held places in Redis at ``url``; this replica's memory while it is away."""

    def __init__(
        self, url: str, *, lease_s: float = 10.0, timeout_s: float = 0.5, retry_s: float = 5.0
    ) -> None:
        self.where = shown(url)
        self.lease_s = lease_s
        self.retry_s = retry_s
        # No retries inside the client: an absent Redis must cost one short timeout, not several.
        self.redis: Any = Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s, retry=Retry(NoBackoff(), 0)
        )
        self.fallback = MemoryStore()
        self.held: dict[str, RedisLease] = {}  # lease id -> lease, refreshed while held
        self._away_until = 0.0  # Redis is not asked again before this (time.monotonic)
        self._refresher: asyncio.Task[None] | None = None
        scripts = {"take": TAKE, "acquire": ACQUIRE, "refresh": REFRESH}
        self._scripts = {name: self.redis.register_script(source) for name, source in scripts.items()}

    @property
    def away(self) -> bool:
        return time.monotonic() < self._away_until

    def _lost(self, exc: BaseException) -> None:
        self._away_until = time.monotonic() + self.retry_s
        log.warning(
            "Redis at %s does not answer (%s); counting this replica's limits in memory, asking again in %g s",
            self.where,
            type(exc).__name__,
            self.retry_s,
        )

    async def take(self, bucket: str, client: str, per_minute: int) -> float:
        if not self.away:
            try:
                wait = await self._scripts["take"](
                    keys=[f"{PREFIX}{bucket}:{client}"], args=[per_minute, per_minute / 60.0]
                )
                return float(wait)
            except UNANSWERED as exc:
                self._lost(exc)
        return await self.fallback.take(bucket, client, per_minute)

    async def acquire(self, kind: str, client: str, cap: int) -> Lease | None:
        if not self.away:
            lease = RedisLease(self, f"{PREFIX}{kind}:{client}", uuid.uuid4().hex)
            try:
                granted = await self._scripts["acquire"](keys=[lease.key], args=[cap, lease.id, self._lease_ms])
            except UNANSWERED as exc:
                self._lost(exc)
            else:
                if not granted:
                    return None
                self.held[lease.id] = lease
                self._start_refresher()
                return lease
        return await self.fallback.acquire(kind, client, cap)

    @property
    def _lease_ms(self) -> int:
        return max(1, round(self.lease_s * 1000))

    async def _release(self, lease: RedisLease) -> None:
        self.held.pop(lease.id, None)
        if self.away:
            return  # the lease lapses by itself within lease_s
        try:
            # Shielded: a request cancelled mid-release still gives its place back.
            await asyncio.shield(self.redis.zrem(lease.key, lease.id))
        except UNANSWERED as exc:
            self._lost(exc)  # the lease lapses by itself within lease_s

    def _start_refresher(self) -> None:
        if self._refresher is None or self._refresher.done():
            self._refresher = asyncio.get_running_loop().create_task(self._refresh_forever())

    async def _refresh_forever(self) -> None:
        while self.held:
            await asyncio.sleep(self.lease_s / 3)
            await self.refresh()

    async def refresh(self) -> None:
        """Push back the expiry of every lease this replica holds (one script per client and kind)."""
        if self.away:
            return
        by_key: dict[str, list[str]] = {}
        for lease in list(self.held.values()):
            by_key.setdefault(lease.key, []).append(lease.id)
        try:
            for key, ids in by_key.items():
                await self._scripts["refresh"](keys=[key], args=[self._lease_ms, *ids])
        except UNANSWERED as exc:
            self._lost(exc)

    async def aclose(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher
            self._refresher = None
        with contextlib.suppress(*UNANSWERED):
            await self.redis.aclose()

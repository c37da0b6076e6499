"""The limits counted in this process's memory: exact for one server, nothing to install."""

from __future__ import annotations

import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


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


class MemoryLease:
    def __init__(self, held: Counter[tuple[str, str]], key: tuple[str, str]) -> None:
        self._held = held
        self._key = key
        self._released = False

    async def release(self) -> None:
        if self._released:
            return
        self._released = True
        self._held[self._key] -= 1
        if self._held[self._key] <= 0:
            del self._held[self._key]  # only clients holding places are kept


class MemoryStore:
    """Token buckets and held places in plain dictionaries, for this process only."""

    def __init__(self, max_clients: int = 10_000) -> None:
        self.max_clients = max_clients
        self.buckets: dict[str, TokenBuckets] = {}
        self.held: Counter[tuple[str, str]] = Counter()

    async def take(self, bucket: str, client: str, per_minute: int) -> float:
        buckets = self.buckets.get(bucket)
        if buckets is None:
            buckets = self.buckets[bucket] = TokenBuckets(per_minute, self.max_clients)
        return buckets.take(client)

    async def acquire(self, kind: str, client: str, cap: int) -> MemoryLease | None:
        key = (kind, client)
        if 0 < cap <= self.held[key]:
            return None
        self.held[key] += 1
        return MemoryLease(self.held, key)

    async def aclose(self) -> None:
        return None

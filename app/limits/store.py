"""What every limit store offers: token buckets to spend from, and capped places to hold."""

from __future__ import annotations

from typing import Protocol

# The names the limits count under; a store keeps each apart.
ANONYMOUS_RATE = "rate-anonymous"
KEYED_RATE = "rate-keyed"
IN_FLIGHT = "inflight"
HEAVY = "heavy"


class Lease(Protocol):
    """One held place; giving it back twice is harmless."""

    async def release(self) -> None: ...


class LimitStore(Protocol):
    async def take(self, bucket: str, client: str, per_minute: int) -> float:
        """Spend one token of ``client``'s bucket, which holds a minute's worth and refills
        at ``per_minute / 60`` a second: 0.0 if allowed, else the seconds until a token is there."""
        ...

    async def acquire(self, kind: str, client: str, cap: int) -> Lease | None:
        """One of ``client``'s ``cap`` places of ``kind``, or None when it holds them all."""
        ...

    async def aclose(self) -> None:
        """Let go of connections and background work (held places are given back by their holders)."""
        ...

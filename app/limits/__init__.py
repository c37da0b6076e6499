"""The per-client counts the limits keep, behind one interface with two stores.

The rate limit's token buckets (``app/middleware/ratelimit.py``), each client's requests
in flight (``app/middleware/inflight.py``) and its long jobs (``app/heavy.py``) are all
counted by a ``LimitStore`` (``store.py``): in this process's memory (``memory.py``, the
default, nothing to install), or in Redis (``redisstore.py``) when ``LAYERSCOPE_REDIS_URL``
is set, so that every replica of a deployment counts against the same allowance.
"""

from __future__ import annotations

from app.limits.memory import MemoryStore
from app.limits.store import Lease, LimitStore
from app.settings import Settings

__all__ = ["Lease", "LimitStore", "MemoryStore", "open_store"]


def open_store(settings: Settings) -> LimitStore:
    """The store the settings ask for; Redis is only imported when it is configured."""
    if not settings.redis_url:
        return MemoryStore()
    from app.limits.redisstore import RedisStore

    return RedisStore(settings.redis_url)

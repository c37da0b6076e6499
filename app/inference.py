"""The inference runtime: one torch thread, bounded admission, an LRU result cache.

Torch never runs on the event loop. One dedicated executor thread runs every model call
(torch uses ``torch_threads`` intra-op threads inside it), so requests never fight over
the cores. At most ``1 + queue_size`` requests are admitted at once; past that the caller
gets a 503 with Retry-After at once instead of waiting in an unbounded queue.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import OrderedDict
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import torch

from app.errors import ProblemError

T = TypeVar("T")


class ResultCache:
    """A small LRU cache of finished responses (a class uploading the same sample)."""

    def __init__(self, entries: int) -> None:
        self.entries = entries
        self._items: OrderedDict[Hashable, object] = OrderedDict()

    def get(self, key: Hashable) -> object | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: Hashable, value: object) -> None:
        if self.entries <= 0:
            return
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.entries:
            self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)


def image_key(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Engine:
    """Runs model work on the inference thread, refusing work past its capacity."""

    def __init__(self, torch_threads: int, queue_size: int, cache_entries: int, retry_after_s: int) -> None:
        self.capacity = 1 + max(0, queue_size)
        self.retry_after_s = retry_after_s
        self.cache = ResultCache(cache_entries)
        self.in_flight = 0
        self._executor = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="layerscope-torch", initializer=_init_thread, initargs=(torch_threads,)
        )

    def admit(self) -> None:
        if self.in_flight >= self.capacity:
            raise ProblemError(
                503,
                "busy",
                "The server is busy with other pictures; try again in a moment.",
                headers={"Retry-After": str(self.retry_after_s)},
            )

    async def run(self, work: Callable[[], T]) -> T:
        """Run ``work`` on the inference thread once admitted (admission is immediate or 503)."""
        self.admit()
        self.in_flight += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, work)
        finally:
            self.in_flight -= 1

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)


def _init_thread(threads: int) -> None:
    torch.set_num_threads(threads)

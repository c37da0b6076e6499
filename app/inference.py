"""The inference runtime: one torch thread, CPU workers around it, bounded admission, a cache.

Torch never runs on the event loop. One dedicated executor thread runs every forward pass
(torch uses ``torch_threads`` intra-op threads inside it), so forward passes never fight
over the cores. An activations request runs in three stages (app/pipeline.py): decoding and
preprocessing on a small CPU worker pool, the forward pass on the inference thread, and
encoding back on the pool. So while the inference thread runs one picture's network, the
pool decodes the next and encodes the last (PIL, zlib and numpy release the GIL).

Micro-batching: pictures that wait for the inference thread and want the same forward pass
(model, checkpoint, layers) go through it together, up to ``max_batch`` at a time. Nothing
waits on purpose: a picture that finds the inference thread idle runs at once, alone;
batches form only from pictures that arrived while it was busy.

At most ``1 + queue_size`` requests are admitted at once, whatever their stage; past that
the caller gets a 503 with Retry-After at once instead of waiting in an unbounded queue.

Long jobs (on-demand feature visualizations) go through the heavy lane instead
(app/heavy.py): admitted apart from the pictures, so a full heavy lane never refuses a
picture, and run in short slices on the same inference thread, between the pictures.
Grad-CAM and guided backpropagation stay with the pictures: one costs about a forward and
a backward pass (tiny 6 and 9 ms, AlexNet 31 and 25 ms on this 2-core machine), not a job.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections import Counter, OrderedDict
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import torch

from app.errors import ProblemError
from app.heavy import Disconnected, HeavyJob, HeavyLane
from app.limits import LimitStore
from app.settings import Settings

T = TypeVar("T")
P = TypeVar("P")
R = TypeVar("R")
A = TypeVar("A")
B = TypeVar("B")


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


@dataclass(frozen=True)
class Stages(Generic[P, R, T]):
    """One request in three stages; ``forward`` may be handed several requests' ``P`` at once.

    ``batch_key``: requests with equal keys (and equal ``forward`` semantics: same model,
    checkpoint and layers) may share one call of ``forward``, which must return one ``R`` per
    item, in order.
    """

    before: Callable[[], P]  # CPU work, on a worker thread
    batch_key: Hashable
    forward: Callable[[list[P]], list[R]]  # on the inference thread
    after: Callable[[P, R], T]  # CPU work, on a worker thread


@dataclass
class _Waiting:
    key: Hashable
    forward: Callable[[list[Any]], list[Any]]
    item: Any
    future: asyncio.Future[Any]


class Engine:
    """Runs model work on the inference thread, refusing work past its capacity.

    Every knob comes from the caller (``from_settings``: the server's Settings, which hold
    the one copy of each default).
    """

    def __init__(
        self,
        *,
        torch_threads: int,
        queue_size: int,
        cache_entries: int,
        retry_after_s: int,
        max_batch: int,
        cpu_workers: int,
        batch_wait_s: float,
        heavy_jobs: int = 1,
        heavy_queue: int = 4,
        client_heavy: int = 1,
    ) -> None:
        self.capacity = 1 + max(0, queue_size)
        self.retry_after_s = retry_after_s
        self.max_batch = max(1, max_batch)
        self.batch_wait_s = batch_wait_s
        self.cache = ResultCache(cache_entries)
        self.in_flight = 0
        self.batches: Counter[int] = Counter()  # forward passes run, by batch size
        self._executor = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="layerscope-torch", initializer=_init_thread, initargs=(torch_threads,)
        )
        # The workers' few torch calls (preprocessing's float conversion) stay single-threaded.
        self._workers = ThreadPoolExecutor(
            max_workers=max(1, cpu_workers),
            thread_name_prefix="layerscope-cpu",
            initializer=_init_thread,
            initargs=(1,),
        )
        self._waiting: list[_Waiting] = []
        self._preparing: Counter[Hashable] = Counter()  # requests in their first stage, by batch key
        self._changed: asyncio.Event | None = None  # set when a first stage ends
        self._dispatcher: asyncio.Task[None] | None = None
        self.heavy = HeavyLane(
            self._on_thread, jobs=heavy_jobs, queue=heavy_queue, per_client=client_heavy, retry_after_s=retry_after_s
        )

    @classmethod
    def from_settings(cls, settings: Settings, limits: LimitStore | None = None) -> Engine:
        """The engine the settings describe; ``limits`` counts each client's long jobs (memory by default)."""
        engine = cls(
            torch_threads=settings.torch_threads,
            queue_size=settings.queue_size,
            cache_entries=settings.cache_entries,
            retry_after_s=settings.retry_after_s,
            max_batch=settings.max_batch,
            cpu_workers=settings.cpu_workers,
            batch_wait_s=settings.batch_wait_ms / 1000,
            heavy_jobs=settings.heavy_jobs,
            heavy_queue=settings.heavy_queue,
            client_heavy=settings.client_heavy,
        )
        if limits is not None:
            engine.heavy.shares = limits
        return engine

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

    def heavy_job(self, client: str | None, disconnected: Disconnected) -> AbstractAsyncContextManager[HeavyJob]:
        """A place in the heavy lane (app/heavy.py) for a long job of ``client``; 503/429 at once
        when there is none to wait for. It never takes one of the pictures' places."""
        return self.heavy.job(client, disconnected)

    async def _on_thread(self, work: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, work)

    async def run_staged(self, stages: Stages[P, R, T]) -> T:
        """Run a request's stages (admission is immediate or 503): CPU, inference (batched), CPU."""
        self.admit()
        self.in_flight += 1
        try:
            loop = asyncio.get_running_loop()
            self._preparing[stages.batch_key] += 1
            try:
                item = await loop.run_in_executor(self._workers, stages.before)
            finally:
                self._preparing[stages.batch_key] -= 1
                if self._changed is not None:
                    self._changed.set()
            output: R = await self._infer(stages.batch_key, stages.forward, item)
            return await loop.run_in_executor(self._workers, stages.after, item, output)
        finally:
            self.in_flight -= 1

    def submit(self, fn: Callable[[], T]) -> Future[T]:
        """Start ``fn`` on a CPU worker (stage 2 hands over layers to encode during the pass)."""
        return self._workers.submit(fn)

    def map(self, fn: Callable[[A], B], items: Sequence[A]) -> list[B]:
        """``map`` over the CPU workers (see ``pool_map``)."""
        return pool_map(self._workers, fn, items)

    async def _infer(self, key: Hashable, forward: Callable[[list[P]], list[R]], item: P) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._waiting.append(_Waiting(key, forward, item, future))
        if self._dispatcher is None or self._dispatcher.done():
            self._dispatcher = asyncio.get_running_loop().create_task(self._dispatch())
        return await future

    async def _next_batch(self) -> list[_Waiting]:
        """The oldest waiting request and up to ``max_batch - 1`` later ones with its key.

        While fewer than ``max_batch`` wait and more with that key are still in their first
        stage, wait for those, ``batch_wait_s`` at most. A lone request never waits: nothing
        else is being prepared then.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.batch_wait_s
        while True:
            self._waiting = [w for w in self._waiting if not w.future.done()]  # callers that left
            if not self._waiting:
                return []
            key = self._waiting[0].key
            batch = [w for w in self._waiting if w.key == key][: self.max_batch]
            left = deadline - loop.time()
            if len(batch) >= self.max_batch or self._preparing[key] <= 0 or left <= 0:
                break
            if self._changed is None:
                self._changed = asyncio.Event()
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), left)
        taken = {id(w) for w in batch}
        self._waiting = [w for w in self._waiting if id(w) not in taken]
        return batch

    async def _dispatch(self) -> None:
        """Feed the inference thread until nothing waits; each batch is one executor job."""
        loop = asyncio.get_running_loop()
        while batch := await self._next_batch():
            try:
                outcomes = await loop.run_in_executor(
                    self._executor, _forward, batch[0].forward, [w.item for w in batch]
                )
            except asyncio.CancelledError:  # shutting down
                for waiting in batch:
                    waiting.future.cancel()
                raise
            except Exception as exc:  # noqa: BLE001 - e.g. the executor has shut down: tell the callers
                outcomes = [(False, exc)] * len(batch)
            self.batches[len(batch)] += 1
            for waiting, (ok, value) in zip(batch, outcomes, strict=True):
                if waiting.future.done():
                    continue
                if ok:
                    waiting.future.set_result(value)
                else:
                    waiting.future.set_exception(value)

    def shutdown(self) -> None:
        if self._dispatcher is not None:
            self._dispatcher.cancel()
        for waiting in self._waiting:
            waiting.future.cancel()
        self._waiting.clear()
        self._workers.shutdown(wait=True, cancel_futures=True)
        self._executor.shutdown(wait=True, cancel_futures=True)


def pool_map(pool: Executor, fn: Callable[[A], B], items: Sequence[A]) -> list[B]:
    """``map`` over ``pool``, callable from one of its own threads or any other.

    The caller runs the first item itself and, at the end, any item no worker has started
    yet: so it never waits on a pool whose workers all wait in turn (every worker inside
    ``pool_map``), and on an idle pool the items run side by side.
    """
    if len(items) <= 1:
        return [fn(x) for x in items]
    futures = [pool.submit(fn, x) for x in items[1:]]
    results = [fn(items[0])]
    for future, x in zip(futures, items[1:], strict=True):
        results.append(fn(x) if future.cancel() else future.result())
    return results


def _forward(forward: Callable[[list[Any]], list[Any]], items: list[Any]) -> list[tuple[bool, Any]]:
    """On the inference thread: the batch in one call; if that fails, each item on its own,
    so one bad picture's error reaches only its own request."""
    try:
        outputs = forward(items)
        if len(outputs) != len(items):
            raise RuntimeError(f"forward returned {len(outputs)} results for {len(items)} items")
        return [(True, output) for output in outputs]
    except Exception as exc:  # noqa: BLE001 - handed to the request(s) it belongs to
        if len(items) == 1:
            return [(False, exc)]
    outcomes: list[tuple[bool, Any]] = []
    for item in items:
        try:
            outcomes.append((True, forward([item])[0]))
        except Exception as exc:  # noqa: BLE001
            outcomes.append((False, exc))
    return outcomes


def _init_thread(threads: int) -> None:
    torch.set_num_threads(threads)

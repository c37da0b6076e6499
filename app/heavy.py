"""The heavy lane: long model jobs, admitted apart from the pictures so pictures keep flowing.

A heavy job is model work that costs far more than a picture's pass: an on-demand feature
visualization (hundreds of optimization steps: 0.35 s on tiny, about 2 s on AlexNet), and
any later teaching or training job. At most ``jobs`` run at once and ``queue`` more wait
their turn (first come, first served); past that the answer is 503 with Retry-After at
once. Each client may hold ``per_client`` of those places (429 beyond). None of this
touches the pictures' admission (``Engine.admit``): a full heavy lane never refuses a
picture.

A job runs in slices on the one inference thread (``HeavyJob.run``), each well under a
second, so a picture waiting meanwhile runs between two slices rather than after the job.
Before every slice, and every ``poll_s`` while it waits for a place, a job asks whether its
client is still there; one whose client has left stops and gives its place back. A new
arrival that finds its client's share or the lane full first asks the jobs in its way
whether their clients are still there, so a page that drops one unit for another (it
aborts the first request) gets the new one at once instead of a refusal.

A client's share is counted by the app's limit store (``app/limits/``): this process's
memory, or Redis, where every replica's jobs of that client count together. A job gives its
place back when it ends and as soon as its client is known to have left.

The hook for a new kind of long job::

    async with engine.heavy_job(client, request.is_disconnected) as job:
        state = await job.run(setup)
        while not await job.run(lambda: one_slice(state)):
            pass
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Protocol, TypeVar

from app.errors import ProblemError
from app.limits import Lease, LimitStore, MemoryStore
from app.limits.store import HEAVY

T = TypeVar("T")
Disconnected = Callable[[], Awaitable[bool]]


class RunOnThread(Protocol):
    """Runs ``work`` on the inference thread (the engine's executor)."""

    def __call__(self, work: Callable[[], T], /) -> Awaitable[T]: ...


class ClientLeft(ProblemError):
    """The client went away; nobody reads the answer, but the job must stop."""

    def __init__(self) -> None:
        super().__init__(408, "client-left", "The client left before the job was done.")


class HeavyJob:
    """One admitted job: its slices run on the inference thread until its client leaves."""

    def __init__(
        self, client: str | None, disconnected: Disconnected, run_on_thread: RunOnThread, share: Lease | None = None
    ) -> None:
        self.client = client
        self.share = share  # its place in its client's share, if that is capped
        self.disconnected = disconnected
        self._run_on_thread = run_on_thread
        self.left = False  # its client has gone: it stops at its next check
        self.started: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def gone(self) -> bool:
        """Whether its client has left (asked once more unless already known)."""
        if not self.left and await self.disconnected():
            self.left = True
            await self.give_back()
        return self.left

    async def give_back(self) -> None:
        """Hand its place in its client's share back (once; the job may still be finishing a slice)."""
        if self.share is not None:
            await self.share.release()

    async def run(self, work: Callable[[], T]) -> T:
        """One slice of the job on the inference thread; ``ClientLeft`` once the client is gone."""
        if await self.gone():
            raise ClientLeft()
        return await self._run_on_thread(work)


class HeavyLane:
    """At most ``jobs`` running and ``queue`` waiting; ``per_client`` of those places per client."""

    def __init__(
        self,
        run_on_thread: RunOnThread,
        *,
        jobs: int,
        queue: int,
        per_client: int,
        retry_after_s: int,
        poll_s: float = 0.05,
        shares: LimitStore | None = None,
    ) -> None:
        self.jobs = max(1, jobs)
        self.queue = max(0, queue)
        self.per_client = per_client  # 0 = no cap
        self.retry_after_s = retry_after_s
        self.poll_s = poll_s
        self.shares = shares or MemoryStore()
        self._run_on_thread = run_on_thread
        self.running: list[HeavyJob] = []
        self.waiting: deque[HeavyJob] = deque()
        self.stopped = 0  # jobs stopped because their client left

    def _present(self) -> list[HeavyJob]:
        return [job for job in (*self.running, *self.waiting) if not job.left]

    async def _sweep(self, jobs: list[HeavyJob]) -> None:
        """Ask ``jobs`` whether their clients are still there; the queue forgets those gone."""
        for job in jobs:
            await job.gone()
        for job in [job for job in self.waiting if job.left]:
            self.waiting.remove(job)
            if not job.started.done():
                job.started.set_exception(ClientLeft())

    async def _share(self, client: str | None) -> Lease | None:
        """A place in ``client``'s share (None when no cap applies); 429 when it holds them all."""
        if self.per_client <= 0 or client is None:
            return None
        lease = await self.shares.acquire(HEAVY, client, self.per_client)
        if lease is None:
            await self._sweep(self._present())  # a job of its own whose client left gives its place back
            lease = await self.shares.acquire(HEAVY, client, self.per_client)
        if lease is None:
            detail = f"This client already has {self.per_client} long job(s) running or waiting; wait for it."
            raise ProblemError(429, "too-many-in-flight", detail, {"Retry-After": str(self.retry_after_s)})
        return lease

    def _full(self) -> bool:
        return len(self._present()) >= self.jobs + self.queue

    async def _admit(self, client: str | None, disconnected: Disconnected) -> HeavyJob:
        share = await self._share(client)
        if self._full():
            await self._sweep(self._present())  # at most jobs + queue cheap questions
        if self._full():
            if share is not None:
                await share.release()
            headers = {"Retry-After": str(self.retry_after_s)}
            raise ProblemError(503, "busy", "The server is busy with other long jobs; try again later.", headers)
        job = HeavyJob(client, disconnected, self._run_on_thread, share)
        if len(self.running) < self.jobs and not self.waiting:
            self.running.append(job)
            job.started.set_result(None)
        else:
            self.waiting.append(job)
        return job

    async def _until_started(self, job: HeavyJob) -> None:
        while True:
            try:
                await asyncio.wait_for(asyncio.shield(job.started), self.poll_s)
                return
            except TimeoutError:
                if await job.gone():
                    raise ClientLeft() from None

    def _leave(self, job: HeavyJob) -> None:
        if job in self.waiting:
            self.waiting.remove(job)
        if job not in self.running:
            return
        self.running.remove(job)
        while self.waiting and len(self.running) < self.jobs:
            successor = self.waiting.popleft()
            if successor.started.done():  # already told to go (its client left)
                continue
            self.running.append(successor)
            successor.started.set_result(None)

    @asynccontextmanager
    async def job(self, client: str | None, disconnected: Disconnected) -> AsyncIterator[HeavyJob]:
        """A place in the lane for the block (503/429 at once when there is none to wait for)."""
        job = await self._admit(client, disconnected)
        try:
            await self._until_started(job)
            yield job
        except ClientLeft:
            self.stopped += 1
            raise
        finally:
            self._leave(job)
            await job.give_back()

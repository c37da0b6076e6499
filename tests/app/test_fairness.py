"""One client cannot starve the others: the heavy lane, and per-client caps on requests in flight.

The lane's own rules are checked on the engine with plain functions (admission, its queue,
per-client places, a client that leaves, slices that let pictures through). The promises
are checked on a real uvicorn server on 127.0.0.1, in this process so a test can make the
on-demand feature visualizations last until their client leaves (``ON_DEMAND_STEPS``
raised): clients are told apart by their source address (every 127.x.y.z is this machine)
or by an API key. The shipped tiny model has no sprite for conv1 (``features.1``), so its
units are computed on demand: a heavy job. Everything asserted is a count of outcomes.
"""

from __future__ import annotations

import asyncio
import select
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from app.errors import ProblemError
from app.heavy import ClientLeft
from app.inference import Engine, Stages
from app.main import create_app
from app.services import featvis
from scripts.load import pictures
from tests.app.conftest import ACTIVATIONS, make_settings
from tests.conftest import free_port

UNIT = "/api/v1/models/tiny/units/features.1/{}"  # no shipped sprite: computed on demand
FOREVER = 10**9  # optimization steps: the job ends only when its client leaves
PNG = {"content-type": "image/png"}
LIMIT_S = 60.0  # a bound on waiting for the server to reach a state, never asserted as a time


class Door:
    """A client's connection as ``request.is_disconnected`` reports it: open until closed."""

    def __init__(self) -> None:
        self.closed = False

    async def __call__(self) -> bool:
        return self.closed


def lane_engine(**heavy: int) -> Engine:
    return Engine(
        torch_threads=1, queue_size=0, cache_entries=0, retry_after_s=1, max_batch=1, cpu_workers=1,
        batch_wait_s=0.0, **heavy,
    )


async def until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + LIMIT_S
    while not condition():
        assert time.monotonic() < deadline, f"never reached: {what}"
        await asyncio.sleep(0.01)


async def held_job(engine: Engine, client: str, door: Door, release: asyncio.Event) -> str:
    async with engine.heavy_job(client, door) as job:
        await release.wait()
        return await job.run(lambda: client)


# ------------------------------------------------------------------ the lane, on the engine


def test_the_heavy_lane_is_bounded_and_never_takes_the_pictures_places() -> None:
    async def scenario() -> None:
        engine = lane_engine(heavy_jobs=1, heavy_queue=2, client_heavy=0)  # pictures: capacity 1
        release = asyncio.Event()
        jobs = [asyncio.create_task(held_job(engine, f"c{i}", Door(), release)) for i in range(3)]
        await until(lambda: len(engine.heavy.running) == 1 and len(engine.heavy.waiting) == 2, "1 running, 2 waiting")
        with pytest.raises(ProblemError) as refused:
            async with engine.heavy_job("c9", Door()):
                pass
        assert (refused.value.status, refused.value.headers) == (503, {"Retry-After": "1"})
        assert engine.in_flight == 0 and await engine.run(lambda: "picture") == "picture"  # its own place
        release.set()
        assert await asyncio.gather(*jobs) == ["c0", "c1", "c2"]  # first come, first served
        assert (engine.heavy.running, list(engine.heavy.waiting), engine.heavy.stopped) == ([], [], 0)
        engine.shutdown()

    asyncio.run(scenario())


def test_a_client_gets_its_share_and_a_new_request_replaces_one_it_left() -> None:
    async def scenario() -> None:
        engine = lane_engine(heavy_jobs=1, heavy_queue=4, client_heavy=1)
        release = asyncio.Event()
        first_door = Door()
        first = asyncio.create_task(held_job(engine, "a", first_door, release))
        await until(lambda: len(engine.heavy.running) == 1, "the first job running")
        with pytest.raises(ProblemError) as refused:
            async with engine.heavy_job("a", Door()):
                pass
        assert refused.value.status == 429 and refused.value.headers == {"Retry-After": "1"}
        other = asyncio.create_task(held_job(engine, "b", Door(), release))  # another client: its own share
        await until(lambda: len(engine.heavy.waiting) == 1, "b waiting")
        # The page drops a unit for another: the first request's connection closes, and the
        # next one is admitted at once (the arrival asks the jobs in its way), not refused.
        first_door.closed = True
        second = asyncio.create_task(held_job(engine, "a", Door(), release))
        await until(lambda: len(engine.heavy.waiting) == 2, "the second request of a waiting")
        release.set()
        with pytest.raises(ClientLeft):
            await first
        assert await asyncio.gather(other, second) == ["b", "a"]
        assert engine.heavy.stopped == 1
        engine.shutdown()

    asyncio.run(scenario())


def test_a_waiting_job_whose_client_leaves_gives_its_place_back() -> None:
    async def scenario() -> None:
        engine = lane_engine(heavy_jobs=1, heavy_queue=1, client_heavy=0)
        release = asyncio.Event()
        running = asyncio.create_task(held_job(engine, "a", Door(), release))
        door = Door()
        waiting = asyncio.create_task(held_job(engine, "b", door, release))
        await until(lambda: len(engine.heavy.waiting) == 1, "b waiting")
        with pytest.raises(ProblemError):  # the lane is full
            async with engine.heavy_job("c", Door()):
                pass
        door.closed = True
        with pytest.raises(ClientLeft):
            await waiting
        assert not engine.heavy.waiting and engine.heavy.stopped == 1
        third = asyncio.create_task(held_job(engine, "c", Door(), release))  # its place is free again
        await until(lambda: len(engine.heavy.waiting) == 1, "c waiting")
        release.set()
        assert await asyncio.gather(running, third) == ["a", "c"]
        engine.shutdown()

    asyncio.run(scenario())


def test_pictures_run_between_a_heavy_job_s_slices() -> None:
    async def scenario() -> tuple[list[str], int]:
        engine = lane_engine()
        log: list[str] = []

        def piece() -> None:
            time.sleep(0.005)
            log.append("slice")

        async def heavy() -> None:
            async with engine.heavy_job("a", Door()) as job:
                for _ in range(40):
                    await job.run(piece)

        def forward(items: list[int]) -> list[int]:
            log.append("picture")
            return items

        async def picture() -> int:
            await until(lambda: len(log) >= 5, "the job under way")
            sent = len(log)
            await engine.run_staged(Stages(lambda: 1, "k", forward, lambda prepared, output: output))
            return sent

        _, sent = await asyncio.gather(heavy(), picture())
        engine.shutdown()
        return log, sent

    log, sent = asyncio.run(scenario())
    assert log.count("slice") == 40 and log.count("picture") == 1
    # It waited for the slice running when it came and perhaps one more, not for the job.
    assert log.index("picture") - sent <= 2 and log[-1] == "slice"


# ------------------------------------------------------------------ a real server


@dataclass
class Live:
    url: str
    app: FastAPI

    @property
    def engine(self) -> Engine:
        engine: Engine = self.app.state.engine
        return engine


@contextmanager
def running(**overrides: Any) -> Iterator[Live]:
    """The app under uvicorn on 127.0.0.1 in a thread: rate limit and result cache off."""
    app = create_app(make_settings(cache_entries=0, **overrides))
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + LIMIT_S
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the test server did not start"
        time.sleep(0.02)
    try:
        yield Live(f"http://127.0.0.1:{port}", app)
    finally:
        server.should_exit = True
        thread.join(timeout=20)


def client_at(live: Live, address: str, headers: dict[str, str] | None = None) -> httpx.AsyncClient:
    """An HTTP client whose connections come from ``address`` (a client of its own)."""
    transport = httpx.AsyncHTTPTransport(local_address=address, limits=httpx.Limits(max_connections=32))
    return httpx.AsyncClient(base_url=live.url, transport=transport, timeout=LIMIT_S, headers=headers)


@pytest.fixture
def forever(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """Feature visualizations that run until their client leaves; no unit cached from before."""
    monkeypatch.setattr(featvis, "ON_DEMAND_STEPS", FOREVER)
    monkeypatch.setattr(featvis, "_CACHE", {})
    return monkeypatch


def refused_properly(response: httpx.Response, status: int) -> bool:
    return (
        response.status_code == status
        and response.headers.get("retry-after") == "1"
        and response.headers["content-type"] == "application/problem+json"
        and response.json()["status"] == status
    )


async def visitor_statuses(live: Live, count: int, seed: int, address: str = "127.0.0.3") -> Counter[int]:
    """``count`` activations requests one after another, every one a different picture."""
    async with client_at(live, address) as visitor:
        seen: Counter[int] = Counter()
        for data in pictures(count, size=64, seed=seed):
            seen[(await visitor.post(ACTIVATIONS, content=data, headers=PNG)).status_code] += 1
        return seen


async def answered(tasks: list[asyncio.Task[httpx.Response]], count: int) -> list[httpx.Response]:
    await until(lambda: sum(t.done() for t in tasks) >= count, f"{count} answers")
    return [t.result() for t in tasks if t.done()]


def test_a_heavy_flood_leaves_other_clients_pictures_alone(forever: pytest.MonkeyPatch) -> None:
    """16 unit pictures at once from one client: it gets one job and 15 refusals (429: four
    requests in flight at most, one long job); meanwhile another client's 20 pictures all get
    200, the flood's job still running; once the flooder leaves, its job stops and frees the lane."""

    async def scenario(live: Live) -> tuple[list[httpx.Response], Counter[int], int, httpx.Response]:
        async with client_at(live, "127.0.0.2") as flooder:
            flood = [asyncio.create_task(flooder.get(UNIT.format(c))) for c in range(16)]
            refused = await answered(flood, 15)
            await until(lambda: len(live.engine.heavy.running) == 1, "the flood's job running")
            visitor = await visitor_statuses(live, 20, seed=11)
            still_running = len(live.engine.heavy.running)
            for task in flood:
                task.cancel()  # the flooder leaves: its connections close
        await until(lambda: not live.engine.heavy.running and live.engine.heavy.stopped == 1, "the job stopped")
        forever.setattr(featvis, "ON_DEMAND_STEPS", 4)
        async with client_at(live, "127.0.0.2") as again:
            after = await again.get(UNIT.format(20))
        return refused, visitor, still_running, after

    with running() as live:
        refused, visitor, still_running, after = asyncio.run(scenario(live))
    assert len(refused) == 15 and all(refused_properly(r, 429) for r in refused)
    assert visitor == Counter({200: 20})
    assert still_running == 1  # the pictures ran beside the job, not after it
    assert after.status_code == 200 and after.json()["featvis"]["source"] == "computed"


def test_the_heavy_lane_answers_503_past_its_queue_and_drains_when_clients_leave(
    forever: pytest.MonkeyPatch,
) -> None:
    """Eight clients ask for a unit each: 1 runs, 4 wait (the default queue), 3 get 503; one
    waiting client leaves and a newcomer takes its place; pictures get 200 throughout."""

    async def scenario(live: Live) -> tuple[Counter[int], Counter[int], int, Counter[int], int]:
        clients = [client_at(live, f"127.0.1.{i}") for i in range(10)]
        try:
            flood = [asyncio.create_task(clients[i].get(UNIT.format(i))) for i in range(8)]
            refused = Counter(r.status_code for r in await answered(flood, 3) if refused_properly(r, 503))
            await until(lambda: len(live.engine.heavy.waiting) == 4, "four waiting")
            visitor = await visitor_statuses(live, 5, seed=12)
            next(t for t in flood if not t.done()).cancel()  # a client whose job runs or waits leaves
            await until(lambda: len(live.engine.heavy.waiting) == 3, "its place freed")
            newcomer = asyncio.create_task(clients[8].get(UNIT.format(8)))
            await until(lambda: len(live.engine.heavy.waiting) == 4, "the newcomer waiting")
            late = await clients[9].get(UNIT.format(9))
            for task in [*flood, newcomer]:
                task.cancel()
        finally:
            for client in clients:
                await client.aclose()
        await until(lambda: not live.engine.heavy.running and not live.engine.heavy.waiting, "the lane empty")
        return refused, visitor, newcomer.cancelled(), Counter([late.status_code]), live.engine.heavy.stopped

    with running() as live:
        refused, visitor, newcomer_waited, late, stopped = asyncio.run(scenario(live))
    assert refused == Counter({503: 3})
    assert visitor == Counter({200: 5})
    assert newcomer_waited  # admitted into the freed place (it was still waiting, not refused)
    assert late == Counter({503: 1})  # the lane was full again
    assert stopped == 6  # 1 running + 4 waiting + the newcomer, all stopped by their clients leaving


def hold_upload(address: str, port: int) -> socket.socket:
    """A picture upload from ``address`` that has sent its headers and a few bytes, and waits."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=LIMIT_S, source_address=(address, 0))
    head = f"POST {ACTIVATIONS} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\nContent-Length: 50000\r\n\r\n"
    sock.sendall(head.encode() + b"\x89PNG")
    return sock


def held_answers(held: list[socket.socket], expected: int) -> list[bytes]:
    """What each held upload has been answered once ``expected`` of them have been (else b"")."""
    answers = {sock: b"" for sock in held}

    def look(timeout: float) -> None:
        readable, _, _ = select.select([s for s in held if not answers[s]], [], [], timeout)
        for sock in readable:
            sock.settimeout(LIMIT_S)
            while b"}" not in answers[sock]:  # the whole problem document, however it is split
                chunk = sock.recv(65536)
                if not chunk:
                    break
                answers[sock] += chunk

    deadline = time.monotonic() + LIMIT_S
    while sum(bool(a) for a in answers.values()) < expected and time.monotonic() < deadline:
        look(0.1)
    time.sleep(0.2)  # a last look: any other answer on its way arrives too
    look(0)
    return [answers[sock] for sock in held]


async def status_once_free(client: httpx.AsyncClient, data: bytes) -> int:
    """POST until the answer is not a 429 (the server noticing closed uploads), at most LIMIT_S."""
    deadline = time.monotonic() + LIMIT_S
    while True:
        status = (await client.post(ACTIVATIONS, content=data, headers=PNG)).status_code
        if status != 429 or time.monotonic() > deadline:
            return status
        await asyncio.sleep(0.05)


def test_each_client_has_at_most_four_requests_in_flight() -> None:
    """Six uploads held open by one client: four are in flight, two are refused at once (429),
    so is its next picture, and so is the same address with an unknown key; another address,
    and the same address with a known API key, get 200. Closing the uploads frees the slots."""

    async def scenario(live: Live, port: int) -> dict[str, Any]:
        held = [hold_upload("127.0.0.2", port) for _ in range(6)]
        try:
            answers = held_answers(held, 2)
            picture = pictures(1, size=64, seed=13)[0]
            guess_key = {"X-API-Key": "guess"}
            async with client_at(live, "127.0.0.2") as same, client_at(live, "127.0.0.2", guess_key) as guess:
                mine = (await same.post(ACTIVATIONS, content=picture, headers=PNG)).status_code
                guessed = (await guess.post(ACTIVATIONS, content=picture, headers=PNG)).status_code
            async with client_at(live, "127.0.0.2", {"X-API-Key": "school"}) as keyed:
                key = (await keyed.post(ACTIVATIONS, content=picture, headers=PNG)).status_code
            other = await visitor_statuses(live, 5, seed=14)
        finally:
            for sock in held:
                sock.close()
        async with client_at(live, "127.0.0.2") as back:
            later = await status_once_free(back, picture)
        return {"replies": answers, "mine": mine, "guessed": guessed, "key": key, "other": other, "later": later}

    with running(api_keys="school", body_grace_s=60) as live:
        got = asyncio.run(scenario(live, int(live.url.rsplit(":", 1)[1])))
    replies = got["replies"]
    assert sum(r == b"" for r in replies) == 4  # in flight, waiting for their bodies
    assert sum(r.startswith(b"HTTP/1.1 429") and b"too-many-in-flight" in r for r in replies) == 2
    assert (got["mine"], got["guessed"], got["key"]) == (429, 429, 200)
    assert got["other"] == Counter({200: 5})
    assert got["later"] == 200


def test_the_caps_come_from_the_settings() -> None:
    defaults = make_settings()
    assert (defaults.client_inflight, defaults.client_heavy) == (4, 1)
    assert (defaults.heavy_jobs, defaults.heavy_queue) == (1, 4)
    engine = Engine.from_settings(make_settings(heavy_jobs=2, heavy_queue=3, client_heavy=0))
    try:
        assert (engine.heavy.jobs, engine.heavy.queue, engine.heavy.per_client) == (2, 3, 0)
    finally:
        engine.shutdown()


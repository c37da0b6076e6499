"""The per-client limits counted in a real Redis: two app instances split one allowance.

Each test talks to a ``redis-server`` the module starts on loopback. Refused requests cost
nothing, so the app-level tests post a few bytes (a 415) as tests/app/test_ratelimit.py does.
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack
from typing import TypeVar

import httpx
import pytest
import redis
from fastapi.testclient import TestClient
from starlette.types import Receive, Scope, Send

from app.errors import ProblemError
from app.heavy import HeavyLane
from app.limits import MemoryStore, open_store
from app.limits.redisstore import RedisStore, shown
from app.limits.store import HEAVY, IN_FLIGHT
from app.main import create_app
from app.middleware.inflight import ClientInflightMiddleware
from tests.app.conftest import ACTIVATIONS, make_settings
from tests.app.redis_server import redis_server
from tests.conftest import free_port

PEER = ("203.0.113.7", 40000)
T = TypeVar("T")


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with redis_server() as url:
        yield url


@pytest.fixture(autouse=True)
def empty(redis_url: str) -> None:
    redis.Redis.from_url(redis_url).flushdb()


def post(client: TestClient) -> int:
    return client.post(ACTIVATIONS, content=b"junk", headers={"content-type": "image/png"}).status_code


def two_apps(stack: ExitStack, **overrides: object) -> tuple[TestClient, TestClient]:
    first, second = (
        stack.enter_context(TestClient(create_app(make_settings(**overrides)), client=PEER)) for _ in range(2)
    )
    return first, second


def test_two_instances_split_one_rate_limit(redis_url: str) -> None:
    with ExitStack() as stack:
        first, second = two_apps(stack, rate_limit=6, redis_url=redis_url)
        assert [post(first) for _ in range(3)] + [post(second) for _ in range(3)] == [415] * 6
        assert post(first) == 429 and post(second) == 429
        refused = first.post(ACTIVATIONS, content=b"junk", headers={"content-type": "image/png"})
        assert int(refused.headers["retry-after"]) == 10  # one token every 60/6 s
    # The same pair in memory: each instance has its own allowance, so together they allow twice as much.
    with ExitStack() as stack:
        first, second = two_apps(stack, rate_limit=6)
        assert [post(first) for _ in range(6)] + [post(second) for _ in range(6)] == [415] * 12
        assert post(first) == 429


def test_redis_token_bucket_waits_as_the_memory_one() -> None:
    with redis_server() as url:
        store, memory = RedisStore(url), MemoryStore()

        async def spend() -> tuple[list[float], list[float]]:
            shared = [await store.take("b", "c", 2) for _ in range(3)]
            local = [await memory.take("b", "c", 2) for _ in range(3)]
            await store.aclose()
            return shared, local

        shared, local = asyncio.run(spend())
    assert shared[:2] == local[:2] == [0.0, 0.0]
    assert shared[2] == pytest.approx(30.0, abs=0.5) and local[2] == pytest.approx(30.0, abs=0.5)


class Held:
    """An app whose requests stay open until ``go`` is set."""

    def __init__(self) -> None:
        self.go = asyncio.Event()
        self.entered = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.entered += 1
        await self.go.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


def test_two_instances_share_one_cap_on_requests_in_flight(redis_url: str) -> None:
    async def scenario() -> list[int]:
        held = Held()
        stores = [RedisStore(redis_url), RedisStore(redis_url)]
        stacks = [ClientInflightMiddleware(held, store, per_client=3, retry_after_s=1) for store in stores]
        clients = [
            httpx.AsyncClient(transport=httpx.ASGITransport(app=stack, client=PEER), base_url="http://t")
            for stack in stacks
        ]
        calls = [asyncio.create_task(clients[i % 2].post(ACTIVATIONS, content=b"x")) for i in range(3)]
        while held.entered < 3:
            await asyncio.sleep(0.01)
        refused = [await clients[i].post(ACTIVATIONS, content=b"x") for i in range(2)]
        held.go.set()
        done = await asyncio.gather(*calls)
        after = await clients[1].post(ACTIVATIONS, content=b"x")  # every place was given back
        for client in clients:
            await client.aclose()
        for store in stores:
            await store.aclose()
        return [r.status_code for r in (*refused, *done, after)]

    assert asyncio.run(scenario()) == [429, 429, 200, 200, 200, 200]


def test_two_heavy_lanes_share_one_clients_cap(redis_url: str) -> None:
    async def run_on_thread(work: Callable[[], T]) -> T:
        return work()

    async def status(lane: HeavyLane, client: str, disconnected: Callable[[], Awaitable[bool]]) -> int:
        try:
            async with lane.job(client, disconnected):
                return 200
        except ProblemError as exc:
            return exc.status

    async def scenario() -> list[int]:
        stores = [RedisStore(redis_url), RedisStore(redis_url)]
        lanes = [HeavyLane(run_on_thread, jobs=2, queue=2, per_client=1, retry_after_s=1, shares=s) for s in stores]
        left = False

        async def disconnected() -> bool:
            return left

        async def present() -> bool:
            return False

        seen = []
        async with lanes[0].job("c", disconnected) as job:
            seen.append(await status(lanes[1], "c", present))  # the other replica: c's one place is taken
            seen.append(await status(lanes[1], "other", present))
            left = True
            # The other replica cannot ask the first one's client; the first replica asks before its
            # next slice (HeavyJob.run) and gives the place back at once.
            seen.append(await status(lanes[1], "c", present))
            assert await job.gone()
            seen.append(await status(lanes[1], "c", present))
        for store in stores:
            await store.aclose()
        return seen

    assert asyncio.run(scenario()) == [429, 200, 429, 200]


def test_a_dead_replicas_places_lapse_and_a_live_ones_are_refreshed(redis_url: str) -> None:
    # A replica that holds one place of client "c" and is then killed: nothing gives it back.
    code = (
        "import asyncio, os, signal\n"
        "from app.limits.redisstore import RedisStore\n"
        "async def main():\n"
        f"    store = RedisStore({redis_url!r}, lease_s=1.0)\n"
        f"    assert await store.acquire({IN_FLIGHT!r}, 'c', 1) is not None\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        "asyncio.run(main())\n"
    )
    died = subprocess.run([sys.executable, "-c", code], timeout=60, check=False)
    assert died.returncode == -9

    async def after_death() -> tuple[bool, float]:
        store = RedisStore(redis_url, lease_s=1.0)
        refused_at_once = await store.acquire(IN_FLIGHT, "c", 1) is None
        start = time.monotonic()
        while await store.acquire(IN_FLIGHT, "c", 1) is None:
            assert time.monotonic() - start < 5
            await asyncio.sleep(0.05)
        await store.aclose()
        return refused_at_once, time.monotonic() - start

    refused_at_once, waited = asyncio.run(after_death())
    assert refused_at_once and waited < 1.5

    async def while_held() -> bool:
        holder, other = RedisStore(redis_url, lease_s=0.6), RedisStore(redis_url, lease_s=0.6)
        lease = await holder.acquire(HEAVY, "d", 1)
        assert lease is not None
        await asyncio.sleep(2.0)  # over three lease lengths: refreshed all along
        still_held = await other.acquire(HEAVY, "d", 1) is None
        await lease.release()
        free_again = await other.acquire(HEAVY, "d", 1) is not None
        await holder.aclose()
        await other.aclose()
        return still_held and free_again

    assert asyncio.run(while_held())


def test_without_redis_the_limits_fail_open_to_each_replicas_memory(caplog: pytest.LogCaptureFixture) -> None:
    nowhere = f"redis://:secret@127.0.0.1:{free_port()}/0"  # nothing listens there
    caplog.set_level(logging.WARNING, logger="layerscope")
    with TestClient(create_app(make_settings(rate_limit=3, redis_url=nowhere)), client=PEER) as client:
        start = time.monotonic()
        assert [post(client) for _ in range(4)] == [415, 415, 415, 429]  # still limited, per replica
        assert time.monotonic() - start < 2.0  # one short timeout at most, not one per request
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "does not answer" in warnings[0] and "in memory" in warnings[0]
    assert "secret" not in warnings[0]


def test_the_counts_are_shared_again_once_redis_answers() -> None:
    port = free_port()

    async def scenario() -> tuple[float, float, int]:
        store = RedisStore(f"redis://127.0.0.1:{port}/0", retry_s=0.2)
        away = await store.take("b", "c", 1)  # nobody there: memory
        with redis_server(port) as url:
            await asyncio.sleep(0.3)
            back = await store.take("b", "c", 1)  # Redis again: its own full bucket
            keys = len(redis.Redis.from_url(url).keys("layerscope:*"))
            await store.aclose()
        return away, back, keys

    assert asyncio.run(scenario()) == (0.0, 0.0, 1)


def test_memory_is_the_default_and_the_url_is_logged_without_its_password(redis_url: str) -> None:
    assert isinstance(open_store(make_settings()), MemoryStore)
    assert isinstance(open_store(make_settings(redis_url="redis://127.0.0.1:1/0")), RedisStore)
    shared, local = create_app(make_settings(redis_url=redis_url)), create_app(make_settings())
    with TestClient(shared), TestClient(local):
        assert isinstance(shared.state.engine.heavy.shares, RedisStore)  # the heavy lane counts there too
        assert isinstance(local.state.engine.heavy.shares, MemoryStore)
    assert shown("redis://user:pw@cache.internal:6380/2") == "redis://cache.internal:6380/2"

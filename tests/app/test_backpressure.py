"""Backpressure on a real server: past its capacity, 503 + Retry-After at once; /healthz stays fast.

The session's ``layerscope serve`` subprocess on 127.0.0.1 (1 running + a queue of 8,
result cache off) gets far more concurrent picture requests than it admits, every one a
different picture. While it is saturated, two probes measure: a small picture posted
every 50 ms (how fast is the refusal?) and GET /healthz every 50 ms. Each client and each
probe connects from its own loopback address (127.0.2.x), so each is a client of its own
and none meets the per-client cap on requests in flight (tests/app/test_fairness.py).

The behaviour (only 200 and 503, Retry-After, health always 200) is always checked. The
latencies (503 and /healthz) are checked as bounds that prove neither waits for inference
(which then takes seconds): the median always against the targets, the 95th percentile
against them too unless the machine is oversubscribed by other work (load average above
twice its cores). The numbers are printed (``pytest -s``) either way.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx
import pytest

from scripts.load import Server, pictures
from tests.app.conftest import ACTIVATIONS

CLIENTS = 12
SECONDS = 5.0


@dataclass
class Observed:
    statuses: Counter[int] = field(default_factory=Counter)
    retry_after: set[str] = field(default_factory=set)
    busy_ms: list[float] = field(default_factory=list)
    probe: Counter[int] = field(default_factory=Counter)
    health_ms: list[float] = field(default_factory=list)


def client_at(server: Server, index: int) -> httpx.AsyncClient:
    transport = httpx.AsyncHTTPTransport(local_address=f"127.0.2.{index + 1}")
    return httpx.AsyncClient(base_url=server.url, transport=transport, timeout=60)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def overload(server: Server) -> Observed:
    seen = Observed()
    images = pictures(120, size=192, seed=7)  # ~110 KB each: decoding and resizing take real work
    small = pictures(100, size=24, seed=8)
    until = time.monotonic() + SECONDS
    png = {"content-type": "image/png"}

    async def client(http: httpx.AsyncClient, index: int) -> None:
        n = index
        while time.monotonic() < until:
            n += CLIENTS
            response = await http.post(ACTIVATIONS, content=images[n % len(images)], headers=png)
            seen.statuses[response.status_code] += 1
            if response.status_code == 503:
                seen.retry_after.add(response.headers.get("retry-after", ""))
                await asyncio.sleep(0.01)

    async def probe_busy(http: httpx.AsyncClient) -> None:
        await asyncio.sleep(0.5)  # let the overload build up first
        n = 0
        while time.monotonic() < until:
            n += 1
            started = time.perf_counter()
            response = await http.post(ACTIVATIONS, content=small[n % len(small)], headers=png)
            seen.probe[response.status_code] += 1
            if response.status_code == 503:
                seen.busy_ms.append((time.perf_counter() - started) * 1000)
            await asyncio.sleep(0.05)

    async def probe_health(http: httpx.AsyncClient) -> None:
        await asyncio.sleep(0.5)
        while time.monotonic() < until:
            started = time.perf_counter()
            response = await http.get("/healthz")
            seen.health_ms.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200
            await asyncio.sleep(0.05)

    clients = [client_at(server, i) for i in range(CLIENTS + 2)]
    try:
        busy, health, *http = clients
        await asyncio.gather(probe_busy(busy), probe_health(health), *(client(http[i], i) for i in range(CLIENTS)))
    finally:
        for each in clients:
            await each.aclose()
    return seen


@pytest.fixture(scope="module")
def observed(live_server: Server) -> tuple[Observed, float]:
    load = os.getloadavg()[0]
    seen = asyncio.run(overload(live_server))
    print(
        f"\nload average {load:.1f}; statuses {dict(seen.statuses)}; probe {dict(seen.probe)}; "
        f"503 ms p50 {pct(seen.busy_ms, 0.5):.1f} p95 {pct(seen.busy_ms, 0.95):.1f} (n={len(seen.busy_ms)}); "
        f"healthz ms p50 {pct(seen.health_ms, 0.5):.1f} p95 {pct(seen.health_ms, 0.95):.1f} "
        f"max {max(seen.health_ms):.1f} (n={len(seen.health_ms)})"
    )
    return seen, max(load, os.getloadavg()[0])


def test_overload_is_refused_with_503_and_retry_after(live_server: Server, observed: tuple[Observed, float]) -> None:
    seen, _load = observed
    assert set(seen.statuses) == {200, 503}  # admitted work and refusals, nothing else
    assert seen.retry_after == {"1"}
    assert seen.busy_ms  # the probe really met a full server
    assert seen.health_ms
    assert live_server.proc.poll() is None


def test_refusals_and_health_are_fast_under_overload(observed: tuple[Observed, float]) -> None:
    seen, load = observed
    cores = os.cpu_count() or 1
    # The targets (503 < 50 ms, healthz < 100 ms) hold for the median always. The tail is
    # held to them too on a machine that is not oversubscribed by other work; on one that is
    # (a shared box running someone's training), to a bound that still proves neither waits
    # for inference, which then takes seconds.
    tail_busy, tail_health = (50, 100) if load <= 2 * cores else (250, 250)
    # The refusal is decided before the body is read: far faster than any inference.
    assert pct(seen.busy_ms, 0.5) < 50 and pct(seen.busy_ms, 0.95) < tail_busy
    # Health never waits for the model (it does not touch the inference thread).
    assert pct(seen.health_ms, 0.5) < 100 and pct(seen.health_ms, 0.95) < tail_health


def test_server_recovers_after_the_overload(live_server: Server) -> None:
    response = httpx.post(
        live_server.url + ACTIVATIONS, files={"image": ("p.png", pictures(1, seed=99)[0], "image/png")}, timeout=60
    )
    assert response.status_code == 200

"""Rows 8: fairness. One client floods on-demand unit pictures; how much slower are another's?

The real server (tiny and AlexNet, rate limit off, every other limit at its default) gets
two clients, each from its own loopback address: the flooder keeps ``FLOOD`` requests for
unit pictures of a layer without shipped sprites open at once (a distinct unit each time,
so each one is a feature visualization computed on demand: a heavy job), sending the next
as soon as one is answered (50 ms after a refusal); the visitor posts a 640x480 JPEG
(a different one each time: cache misses) and waits for the whole JSON. Rounds alternate:
the visitor with the server idle, then the visitor during the flood; the flood is stopped
(its connections closed, which stops its job) before the next idle turn. The rows give the
visitor's p50 and p95 in both and their ratio, and count every answer either client got.

The flooder runs in this process, on the same two cores as the server and the visitor:
its own work (hundreds of refusals a second) is part of what the visitor pays.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx

from bench.common import Config, Row, judge, photo_jpeg
from bench.server import serve

FLOOD = 16
UNSHIPPED = {"tiny": ("features.1", 32), "alexnet": ("features.11", 256)}  # layer, units
FLOODER, VISITOR = "127.0.4.1", "127.0.4.2"
REFUSED_PAUSE_S = 0.05


@dataclass
class Flood:
    """``FLOOD`` unit requests kept open from one address, on an event loop in a thread."""

    url: str
    model: str
    statuses: Counter[int] = field(default_factory=Counter)
    channels: Iterator[int] = field(default_factory=itertools.count)

    async def _one(self, http: httpx.AsyncClient, layer: str, units: int) -> None:
        while True:
            path = f"/api/v1/models/{self.model}/units/{layer}/{next(self.channels) % units}"
            response = await http.get(path)
            self.statuses[response.status_code] += 1
            if response.status_code != 200:
                await asyncio.sleep(REFUSED_PAUSE_S)

    async def _run(self, stop: asyncio.Event) -> None:
        layer, units = UNSHIPPED[self.model]
        transport = httpx.AsyncHTTPTransport(local_address=FLOODER, limits=httpx.Limits(max_connections=FLOOD))
        async with httpx.AsyncClient(base_url=self.url, transport=transport, timeout=300) as http:
            tasks = [asyncio.create_task(self._one(http, layer, units)) for _ in range(FLOOD)]
            await stop.wait()
            for task in tasks:
                task.cancel()  # closes the connections: the server stops the running job
            await asyncio.gather(*tasks, return_exceptions=True)

    @contextmanager
    def running(self) -> Iterator[None]:
        loop = asyncio.new_event_loop()
        stop = asyncio.Event()
        thread = threading.Thread(target=loop.run_until_complete, args=(self._run(stop),), daemon=True)
        thread.start()
        try:
            time.sleep(0.3)  # the flood is under way: a job running, the rest refused
            yield
        finally:
            loop.call_soon_threadsafe(stop.set)
            thread.join(timeout=60)
            loop.close()
            time.sleep(0.2)  # the server notices the closed connections and ends the job


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def visits(http: httpx.Client, model: str, count: int, pictures: Iterator[bytes], seen: Counter[int]) -> list[float]:
    """``count`` activations requests one after another: their latencies in seconds."""
    latencies = []
    for _ in range(count):
        started = time.perf_counter()
        response = http.post(
            f"/api/v1/models/{model}/activations", files={"image": ("photo.jpg", next(pictures), "image/jpeg")}
        )
        response.read()
        latencies.append(time.perf_counter() - started)
        seen[response.status_code] += 1
    return latencies


def summary(
    model: str, idle: list[float], flooded: list[float], visitor: Counter[int], flood: Counter[int]
) -> list[Row]:
    """The two rows (p50, p95), each the flooded time with its ratio to the idle one."""
    rows = []
    for q in (50, 95):
        calm, busy = percentile(idle, q) * 1000, percentile(flooded, q) * 1000
        rows.append(Row("fairness", model, f"visitor's activations p{q} during a unit flood", ms=busy,
                        ratio=busy / calm, target="every visitor request 200",
                        status=judge(set(visitor) == {200}),
                        note=f"idle p{q} {calm:.1f} ms; ratio = flood / idle"))
    rows[-1].note += (f"; {len(idle)} idle + {len(flooded)} flooded visits, interleaved; visitor got {dict(visitor)};"
                      f" flooder ({FLOOD} open) got {dict(sorted(flood.items()))}")
    return rows


def run(config: Config) -> list[Row]:
    rounds, per_turn = (3, 5) if config.quick else (4, 8)
    rows: list[Row] = []
    with serve(",".join(config.models)) as server:
        pictures = (photo_jpeg(variant) for variant in itertools.count(1000))
        transport = httpx.HTTPTransport(local_address=VISITOR)
        with httpx.Client(base_url=server.url, transport=transport, timeout=120) as http:
            for model in config.models:
                visitor: Counter[int] = Counter()
                idle, flooded = [], []
                flood = Flood(server.url, model)
                visits(http, model, 2, pictures, Counter())  # warm the server's threads
                for _ in range(rounds):
                    idle += visits(http, model, per_turn, pictures, visitor)
                    with flood.running():
                        flooded += visits(http, model, per_turn, pictures, visitor)
                rows += summary(model, idle, flooded, visitor, flood.statuses)
    return rows

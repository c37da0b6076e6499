"""Rows 4: LayerScope against the naive peer server (``bench.naive_server``), AlexNet, same run.

Both servers run at once in their own uvicorn subprocesses (an idle one costs nothing), and
the bench process times, interleaved repetition by repetition:

- the reference: torchvision's AlexNet as torchvision builds it (NCHW layout), bare forward
  pass, batch 1, 2 threads, beside the served network's own bare pass (channels-last, faster);
- one client's end to end against each server: a distinct 640x480 JPEG posted until the
  whole JSON is read (a cache miss for LayerScope);
- the forward step the LayerScope server reports in its ``timings_ms`` for those requests
  (the pass as it runs beside the server's other work, against the bare pass run alone).

Then 1 and 8 client threads against each server in turn, the order swapped every round, with
the bare pass timed before and after. Ratios are to the as-built bare pass (the issue's
reference); the served network's ratio is in the note.
"""

from __future__ import annotations

import copy
import itertools
import json
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
import torch

from bench.common import TORCH_THREADS, Config, Row, alexnet_weights, interleaved, judge, median_ms, registry
from bench.http import Client, load, percentile, pictures, queue_capacity
from bench.inprocess import bare_forward, prepared
from bench.server import serve

E2E_TARGET = 1.6  # LayerScope end to end / as-built bare forward
THROUGHPUT_TARGET = 1.3  # 8 clients' requests/s x as-built bare forward
PEER_SPEEDUP_TARGET = 3.0  # LayerScope's 8-client throughput / the naive server's
AS_BUILT = "bare forward, torchvision's AlexNet as built (NCHW)"
SERVED = "bare forward, the served network (channels-last)"
OURS = "LayerScope"
PEER = "naive peer"  # bench/naive_server.py: FastAPI + create_feature_extractor + a PNG per channel


def forward_ms(body: bytes) -> float | None:
    """``timings_ms.forward`` from a LayerScope answer, read from its tail (the key comes last),
    so the client does not parse half a megabyte of JSON on the cores the server needs."""
    at = body.rfind(b'"timings_ms"')
    if at < 0:
        return None
    start = body.index(b"{", at)
    timings = json.loads(body[start : body.index(b"}", start) + 1])
    value = timings.get("forward")
    return float(value) if value is not None else None


@dataclass
class Recording(Client):
    """A LayerScope client that keeps the forward step of every answer it reads."""

    forwards: list[float] = field(default_factory=list)

    def post(self, model: str, data: bytes, http: httpx.Client | None = None) -> httpx.Response:
        response = super().post(model, data, http)
        if response.status_code == 200:
            value = forward_ms(response.content)
            if value is not None:
                with self.lock:
                    self.forwards.append(value)
        return response


@dataclass
class Naive(Client):
    """A client of the naive peer (its one route; ``model`` is ignored: it serves AlexNet only)."""

    def post(self, model: str, data: bytes, http: httpx.Client | None = None) -> httpx.Response:
        response = (http or self.http).post(
            f"{self.url}/activations", files={"image": ("photo.jpg", data, "image/jpeg")}
        )
        with self.lock:
            self.answered += 1
        return response


def as_built_forward(tensor: torch.Tensor) -> Callable[[], object]:
    """torchvision's AlexNet with the served weights, in the layout torchvision builds it."""
    entry = registry()["alexnet"]
    assert entry.network is not None
    network = copy.deepcopy(entry.network).to(memory_format=torch.contiguous_format)
    batch = tensor.unsqueeze(0).contiguous()

    def run() -> object:
        with torch.inference_mode():
            return network(batch)

    return run


def latency(config: Config, ours: Recording, peer: Naive, pool: list[bytes]) -> list[Row]:
    entry = registry()["alexnet"]
    tensor = prepared(entry)[2]
    fresh = itertools.cycle(pool)

    def post(client: Client) -> Callable[[], object]:
        def run() -> object:
            response = client.post("alexnet", next(fresh))
            response.raise_for_status()
            return response.content

        return run

    ours.forwards.clear()
    times = interleaved(
        {AS_BUILT: as_built_forward(tensor), SERVED: bare_forward(entry, tensor), OURS: post(ours), PEER: post(peer)},
        config.reps,
    )
    med = {name: median_ms(samples) for name, samples in times.items()}
    ref, served = med[AS_BUILT], med[SERVED]
    forward = statistics.median(ours.forwards[-config.reps :])

    def row(name: str, ms: float, best: float | None = None, target: str = "", status: str = "info",
            note: str = "") -> Row:
        return Row("naive", "alexnet", name, ms=ms, best_ms=best, ratio=ms / ref, target=target, status=status,
                   note=note)

    e2e = med[OURS] / ref
    rows = [
        row(AS_BUILT, ref, min(times[AS_BUILT]) * 1000,
            note=f"reference, {config.reps} reps, {TORCH_THREADS} threads, this process while the servers wait"),
        row(SERVED, served, min(times[SERVED]) * 1000, note="the network LayerScope runs: not the reference"),
        row(f"{OURS}: end to end, 1 client", med[OURS], min(times[OURS]) * 1000, target=f"<= {E2E_TARGET}x",
            status=judge(e2e <= E2E_TARGET),
            note=f"{med[OURS] / served:.2f}x the served network's pass; distinct pictures (cache misses)"),
        row(f"{PEER}: end to end, 1 client", med[PEER], min(times[PEER]) * 1000, target=f"> {OURS}'s",
            status=judge(med[PEER] > med[OURS]),
            note=f"{med[PEER] / med[OURS]:.2f}x {OURS}'s latency; FastAPI, create_feature_extractor, PNG per channel"),
        row(f"{OURS}: forward step in timings_ms, 1 client", forward,
            note=f"{forward / served:.2f}x the served network's bare pass (encoding overlapping it)"),
    ]
    return rows


@dataclass
class Load:
    rps: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    refused: int = 0


def throughput(config: Config, ours: Recording, peer: Naive, pool: list[bytes]) -> list[Row]:
    entry = registry()["alexnet"]
    tensor = prepared(entry)[2]
    reference = {AS_BUILT: as_built_forward(tensor), SERVED: bare_forward(entry, tensor)}
    seconds = float(config.extra.get("naive_seconds", 2.0 if config.quick else 5.0))
    rounds = 1 if config.quick else 2
    clients: dict[str, Client] = {OURS: ours, PEER: peer}
    results: dict[tuple[str, int], Load] = {(name, n): Load() for name in clients for n in (1, 8)}
    forwards: dict[int, list[float]] = {1: [], 8: []}
    bare: dict[str, list[float]] = {AS_BUILT: [], SERVED: []}
    load(ours, "alexnet", pool, 2, 1.0)  # warm both servers' threads and allocators
    load(peer, "alexnet", pool, 2, 1.0)
    for turn in range(rounds):
        timed = interleaved(reference, config.reps)
        for name in bare:
            bare[name].append(median_ms(timed[name]))
        order = list(clients) if turn % 2 == 0 else list(reversed(clients))
        for n in (1, 8):
            for name in order:
                ours.forwards.clear()
                answered, elapsed, latencies, refused = load(clients[name], "alexnet", pool, n, seconds)
                result = results[name, n]
                result.rps.append(answered / elapsed)
                result.latencies += latencies
                result.refused += refused
                if name == OURS:
                    forwards[n] += ours.forwards
    timed = interleaved(reference, config.reps)
    for name in bare:
        bare[name].append(median_ms(timed[name]))
    ref_ms, served_ms = statistics.median(bare[AS_BUILT]), statistics.median(bare[SERVED])
    rows: list[Row] = []
    single_p50 = percentile(results[OURS, 1].latencies, 50) * 1000
    for (name, n), result in results.items():
        rps = statistics.median(result.rps)
        p50, p99 = (percentile(result.latencies, q) * 1000 for q in (50, 99))
        row = Row("throughput", "alexnet", f"{name}: {n} client{'s' if n > 1 else ''}", ms=p50, value=rps,
                  unit="req/s", ratio=rps * ref_ms / 1000,
                  note=f"p50 {p50:.0f} ms, p99 {p99:.0f} ms, {len(result.latencies)} answered, {result.refused}"
                  f" refused (503); {rps * served_ms / 1000:.2f}x of 1 / the served network's pass")
        if name == OURS and n == 8:
            slots = min(n, queue_capacity())
            bound = slots * single_p50
            row.target = f">= {THROUGHPUT_TARGET}x; p99 <= {slots} x 1-client p50"
            row.status = judge(row.ratio is not None and row.ratio >= THROUGHPUT_TARGET and p99 <= bound)
            row.note += f"; p99 bound {bound:.0f} ms"
        rows.append(row)
    rows[0].note += (f"; ratios to torchvision's AlexNet as built, {ref_ms:.1f} ms (served network {served_ms:.1f} ms),"
                     f" timed before, between and after the loads; {rounds} round(s) of {seconds:g} s per row")
    speedup = statistics.median(results[OURS, 8].rps) / statistics.median(results[PEER, 8].rps)
    rows.append(Row("throughput", "alexnet", f"{OURS} / {PEER}, 8 clients", value=speedup, unit="x",
                    target=f">= {PEER_SPEEDUP_TARGET:g}x", status=judge(speedup >= PEER_SPEEDUP_TARGET)))
    for n in (1, 8):
        if forwards[n]:
            ms = statistics.median(forwards[n])
            rows.append(Row("throughput", "alexnet", f"{OURS}: forward step in timings_ms, {n} client{'s' * (n > 1)}",
                            ms=ms, ratio=ms / ref_ms,
                            note=f"{ms / served_ms:.2f}x the served network's bare pass; one pass per answer"
                            " (a micro-batch's pass is counted once per picture in it)"))
    return rows


def run(config: Config) -> list[Row]:
    if "alexnet" not in config.models:
        return [Row("naive", "alexnet", PEER, status="skipped", note="AlexNet not among --models")]
    pool = pictures()
    weights = {"NAIVE_ALEXNET_WEIGHTS": str(alexnet_weights())}
    # Eight clients from one address: the per-client cap on requests in flight (the page's
    # four) would refuse half of them, so it is off here as the rate limit is.
    ours_server = serve("alexnet", client_inflight="0")
    peer_server = serve("alexnet", target="bench.naive_server:app", environment=weights)
    with ours_server as server, peer_server as naive:
        ours, peer = Recording(server.url), Naive(naive.url)
        try:
            rows = latency(config, ours, peer, pool)
            rows += throughput(config, ours, peer, pool)
        finally:
            ours.http.close()
            peer.http.close()
    return rows

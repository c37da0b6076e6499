"""Ray Serve rows: Serve's per-request cost against plain uvicorn, and 1 and 2 replicas.

- per request, for each model: the same 640x480 JPEGs (distinct each time, result cache off)
  POSTed one at a time to a plain uvicorn server and to ``layerscope serve --ray --replicas 1``
  three ways in: Serve's HTTP proxy, the replica's own port (direct ingress) and, from a second
  ``serve --ray --ingress haproxy``, Serve's HAProxy; all running, interleaved; ratio = each
  median / uvicorn's. What Serve adds is the hop through its proxy to the replica.
- throughput: 4 client threads for a fixed time against 1 and then 2 replicas (two
  ``serve --ray`` starts), retrying on 503 as bench/http.py does. On a 2-core machine the
  replicas share the same cores, so the second replica shows Serve's overhead, not a
  speed-up; on a cluster each replica brings its own cores.
"""

from __future__ import annotations

import itertools
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from bench.common import ROOT, Config, Row, alexnet_weights, interleaved, judge, median_ms
from bench.http import Client, load, pictures
from bench.server import serve
from scripts.load import free_port

SERVE_TARGET = 1.15
READY = re.compile(r"LayerScope on Ray Serve at (\S+)")
DIRECT = re.compile(r"Replicas answering directly \(Serve's direct ingress\): (.+)$")
SETTINGS = {"LAYERSCOPE_CACHE_ENTRIES": "0", "LAYERSCOPE_RATE_LIMIT": "0", "LAYERSCOPE_RATE_LIMIT_KEYED": "0",
            "LAYERSCOPE_CLIENT_INFLIGHT": "0", "LAYERSCOPE_CLIENT_HEAVY": "0"}


@contextmanager
def ray_serve(
    replicas: int, models: str, timeout_s: float = 300.0, direct: bool = False, haproxy: bool = False
) -> Iterator[list[str]]:
    """``layerscope serve --ray --replicas N`` (its own local Ray) until it says where it listens:
    the proxy's address, then with ``direct`` (``--direct-ingress``) each replica's own.
    ``haproxy``: ``--ingress haproxy`` (which needs the per-client limits off: they are)."""
    command = [sys.executable, "-m", "app.cli", "serve", "--ray", "--replicas", str(replicas),
               "--port", str(free_port()), *(["--direct-ingress"] if direct else []),
               *(["--ingress", "haproxy"] if haproxy else [])]
    env = {**os.environ, **SETTINGS, "LAYERSCOPE_MODELS": models,
           "LAYERSCOPE_ALEXNET_WEIGHTS": str(alexnet_weights()), "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    found: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            match = READY.search(line)
            if match:
                found.append(match[1])
                if not direct:
                    ready.set()
            if direct and (match := DIRECT.search(line)):
                found.extend(match[1].split(", "))
                ready.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        if not ready.wait(timeout_s):
            raise RuntimeError(f"serve --ray not ready after {timeout_s} s")
        yield found
    finally:
        process.terminate()  # SIGTERM: removes the app, stops Serve and its Ray instance
        try:
            process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        reader.join(10)
        if process.stdout is not None:
            process.stdout.close()


def per_request(
    config: Config, model: str, plain: Client, proxy: Client, direct: Client, haproxy: Client, pool: list[bytes]
) -> list[Row]:
    """One replica through Serve's proxy, answering by itself (direct ingress) and behind
    Serve's HAProxy, against plain uvicorn, the four interleaved."""
    fresh = itertools.cycle(pool)

    def post(client: Client) -> object:
        response = client.post(model, next(fresh))
        response.raise_for_status()
        return response.content

    times = interleaved({"uvicorn": lambda: post(plain), "proxy": lambda: post(proxy),
                         "direct": lambda: post(direct), "haproxy": lambda: post(haproxy)}, config.reps * 2)
    base = median_ms(times["uvicorn"])
    rows = []
    for key, row in (("proxy", "through its HTTP proxy"), ("direct", "direct ingress (--direct-ingress)"),
                     ("haproxy", "through its HAProxy (--ingress haproxy)")):
        ms = median_ms(times[key])
        rows.append(Row("scale", model, f"Ray Serve, 1 replica, {row}: per request, against plain uvicorn", ms=ms,
                        best_ms=min(times[key]) * 1000, ratio=ms / base, target=f"<= {SERVE_TARGET}x",
                        status=judge(ms / base <= SERVE_TARGET),
                        note=f"uvicorn {base:.1f} ms; 640x480 JPEG, cache off; ratio to uvicorn, not to the bare pass"))
    return rows


def batching_rows(config: Config, model: str, plain: Client, direct: Client, pool: list[bytes]) -> list[Row]:
    """8 clients against plain uvicorn and against one replica answering by itself, in turns
    (two rounds each, alternating): the replica's engine micro-batches as uvicorn's does, so
    the same throughput says batching works inside a replica as on one machine."""
    seconds = 2.0 if config.quick else 5.0
    totals = {"uvicorn": [0, 0.0], "replica": [0, 0.0]}
    for client in (plain, direct):
        load(client, model, pool, 2, 1.0)  # warm both
    for _ in range(2):
        for name, client in (("uvicorn", plain), ("replica", direct)):
            answered, elapsed, _, _ = load(client, model, pool, 8, seconds)
            totals[name][0] += answered
            totals[name][1] += elapsed
    rates = {name: answered / elapsed for name, (answered, elapsed) in totals.items()}
    return [
        Row("scale", model, "plain uvicorn: 8 clients", value=rates["uvicorn"], unit="req/s",
            note=f"two {seconds:g} s rounds, alternating with the replica's"),
        Row("scale", model, "Ray Serve, 1 replica, direct ingress: 8 clients", value=rates["replica"], unit="req/s",
            ratio=rates["replica"] / rates["uvicorn"],
            note="ratio to plain uvicorn's 8 clients: the engine's micro-batches inside a replica"),
    ]


def throughput_row(config: Config, url: str, replicas: int, pool: list[bytes]) -> Row:
    client = Client(url)
    seconds = 2.0 if config.quick else 6.0
    load(client, "tiny", pool, 2, 1.0)  # warm every replica
    answered, elapsed, _, refused = load(client, "tiny", pool, 4, seconds)
    note = f"4 clients, {seconds:g} s, {refused} refused (503) and retried"
    if replicas > 1:
        note += "; 2 cores shared by the replicas: overhead, not speed-up"
    return Row("scale", "tiny", f"Ray Serve, {replicas} replica{'s' if replicas > 1 else ''}: throughput",
               value=answered / elapsed, unit="req/s", note=note)


def run(config: Config) -> list[Row]:
    pool = pictures()
    started = time.perf_counter()
    models = ",".join(config.models)
    with serve(models=models, cache_entries="0", client_inflight="0") as plain, \
            ray_serve(1, models, direct=True) as (url, direct), \
            ray_serve(1, models, haproxy=True) as (haproxy,):
        rows = [row for model in config.models
                for row in per_request(config, model, Client(plain.url), Client(url), Client(direct),
                                       Client(haproxy), pool)]
        batched = "alexnet" if "alexnet" in config.models else config.models[0]
        rows += batching_rows(config, batched, Client(plain.url), Client(direct), pool)
        rows.append(throughput_row(config, url, 1, pool))
    with ray_serve(2, "tiny") as (url,):
        rows.append(throughput_row(config, url, 2, pool))
    rows[-1].note += f"; the group took {time.perf_counter() - started:.0f} s with three server starts"
    return rows

"""Load the server on loopback and print what it did: ``python -m scripts.load``.

Each phase starts its own ``layerscope serve`` subprocess on 127.0.0.1 (tiny model only)
and drives it with asyncio + httpx clients that post small, distinct pictures:

* (a) ``steady``: 8 concurrent clients for 60 s, rate limit off and a queue that holds
  them all: zero 5xx, zero errors.
* (b) ``overload``: 64 concurrent clients for 30 s with a rate limit on: only 200, 429
  or 503 may come back (no 500/502/504, no dropped connection), memory stays bounded.
* (c) ``soak`` (``--soak``): 10 minutes at half the measured capacity, with resource
  figures (RSS, open fds, threads) before and after.

Durations shrink with ``--steady-s``, ``--overload-s`` and ``--soak-s``. Every request
goes to 127.0.0.1 only, every loop is bounded in time, and the server is stopped at the
end. The exit status is 1 when a phase broke its promise.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
URL_PATH = "/api/v1/models/tiny/activations"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Resources:
    rss_mib: float
    fds: int
    threads: int


@dataclass
class Server:
    """A ``layerscope serve`` subprocess listening on 127.0.0.1."""

    proc: subprocess.Popen[bytes]
    port: int
    log: io.BufferedRandom

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def resources(self) -> Resources:
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        return Resources(
            rss_mib=int(fields["VmRSS"].split()[0]) / 1024,
            fds=len(os.listdir(f"/proc/{self.proc.pid}/fd")),
            threads=int(fields["Threads"]),
        )

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode("utf-8", "replace")

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM, wait for the graceful shutdown, kill if it hangs; the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


@contextlib.contextmanager
def serve(env: dict[str, str] | None = None, ready_s: float = 180.0) -> Iterator[Server]:
    """Start the server with ``LAYERSCOPE_*`` overrides, wait until /healthz answers."""
    port = free_port()
    full_env = {**os.environ, "LAYERSCOPE_MODELS": "tiny", **(env or {})}
    command = [sys.executable, "-m", "app.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
    # The server's own log (never upload bytes) goes to an anonymous temp file: a pipe
    # nobody reads would fill up and stall the server.
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(command, cwd=ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT)
        server = Server(proc, port, log)
        try:
            _wait_ready(server, ready_s)
            yield server
        finally:
            server.terminate()


def _wait_ready(server: Server, ready_s: float) -> None:
    deadline = time.monotonic() + ready_s
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"server exited with {server.proc.returncode}:\n{server.output()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(server.url + "/healthz", timeout=1.0).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"server not ready after {ready_s} s:\n{server.output()}")


def pictures(count: int, size: int = 96, seed: int = 0) -> list[bytes]:
    """Small distinct PNGs (noise), so most requests miss the result cache and run the model."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        image = Image.frombytes("RGB", (size, size), rng.randbytes(size * size * 3))
        buffer = io.BytesIO()
        image.save(buffer, "PNG")
        out.append(buffer.getvalue())
    return out


@dataclass
class PhaseResult:
    name: str
    clients: int
    seconds: float
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    before: Resources | None = None
    after: Resources | None = None
    rss_peak_mib: float = 0.0

    def percentile(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    @property
    def requests(self) -> int:
        return sum(self.statuses.values()) + sum(self.errors.values())


async def _client(
    http: httpx.AsyncClient, images: Sequence[bytes], until: float, result: PhaseResult, pace_s: float
) -> None:
    rng = random.Random(id(result) ^ len(result.latencies))
    while time.monotonic() < until:
        started = time.monotonic()
        body = rng.choice(images)
        try:
            response = await http.post(URL_PATH, files={"image": ("load.png", body, "image/png")})
            result.statuses[response.status_code] += 1
            result.latencies.append(time.monotonic() - started)
        except httpx.HTTPError as exc:
            result.errors[type(exc).__name__] += 1
        if pace_s:
            await asyncio.sleep(max(0.0, pace_s - (time.monotonic() - started)))


async def _sample(server: Server, until: float, result: PhaseResult) -> None:
    while time.monotonic() < until:
        result.rss_peak_mib = max(result.rss_peak_mib, server.resources().rss_mib)
        await asyncio.sleep(0.5)


async def drive(server: Server, name: str, clients: int, seconds: float, pace_s: float = 0.0) -> PhaseResult:
    """``clients`` loops posting pictures for ``seconds``; each waits ``pace_s`` between starts.

    Each loop connects from its own loopback address (127.0.3.x), as distinct visitors do, so
    the per-client cap on requests in flight meets each of them alone."""
    images = pictures(256)
    result = PhaseResult(name, clients, seconds)
    loops = [
        httpx.AsyncClient(base_url=server.url, timeout=30.0,
                          transport=httpx.AsyncHTTPTransport(local_address=f"127.0.3.{i % 250 + 1}"))
        for i in range(clients)
    ]
    try:
        # Warm up (first inferences allocate torch's working memory) before the "before" figures.
        for body in images[:20]:
            await loops[0].post(URL_PATH, files={"image": ("warm.png", body, "image/png")})
        result.before = server.resources()
        until = time.monotonic() + seconds
        tasks = [_client(http, images, until, result, pace_s) for http in loops]
        await asyncio.gather(_sample(server, until, result), *tasks)
    finally:
        for http in loops:
            await http.aclose()
    await asyncio.sleep(1.0)  # let the server settle before the "after" figures
    result.after = server.resources()
    return result


def table(results: Sequence[PhaseResult]) -> str:
    head = (
        "phase", "clients", "secs", "requests", "req/s", "p50 ms", "p95 ms", "p99 ms",
        "statuses", "errors", "RSS MiB before/peak/after", "fds before/after", "threads before/after",
    )
    rows = [head]
    for r in results:
        assert r.before is not None and r.after is not None
        rows.append((
            r.name, str(r.clients), f"{r.seconds:g}", str(r.requests), f"{r.requests / r.seconds:.1f}",
            f"{r.percentile(0.50):.1f}", f"{r.percentile(0.95):.1f}", f"{r.percentile(0.99):.1f}",
            " ".join(f"{k}:{v}" for k, v in sorted(r.statuses.items())),
            " ".join(f"{k}:{v}" for k, v in sorted(r.errors.items())) or "0",
            f"{r.before.rss_mib:.0f}/{r.rss_peak_mib:.0f}/{r.after.rss_mib:.0f}",
            f"{r.before.fds}/{r.after.fds}", f"{r.before.threads}/{r.after.threads}",
        ))
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = [" | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def problems(result: PhaseResult, allowed: set[int], max_growth_mib: float) -> list[str]:
    """What this phase did that it promised not to."""
    found = []
    wrong = {code: n for code, n in result.statuses.items() if code not in allowed}
    if wrong:
        found.append(f"{result.name}: unexpected statuses {wrong}")
    if result.errors:
        found.append(f"{result.name}: client errors {dict(result.errors)}")
    assert result.before is not None
    if result.rss_peak_mib - result.before.rss_mib > max_growth_mib:
        found.append(f"{result.name}: RSS grew {result.rss_peak_mib - result.before.rss_mib:.0f} MiB")
    return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.load", description=__doc__.split("\n\n")[0])
    parser.add_argument("--steady-s", type=float, default=60.0, help="duration of phase (a)")
    parser.add_argument("--steady-clients", type=int, default=8)
    parser.add_argument("--overload-s", type=float, default=30.0, help="duration of phase (b); 0 skips it")
    parser.add_argument("--overload-clients", type=int, default=64)
    parser.add_argument("--overload-rate-limit", type=int, default=600, help="per-minute limit in (b)")
    parser.add_argument("--soak", action="store_true", help="also run (c), the soak at half capacity")
    parser.add_argument("--soak-s", type=float, default=600.0)
    args = parser.parse_args(argv)

    results: list[PhaseResult] = []
    found: list[str] = []
    capacity = None
    if args.steady_s > 0:
        # The queue holds every client: a steady load within capacity must see no 503.
        env = {"LAYERSCOPE_RATE_LIMIT": "0", "LAYERSCOPE_QUEUE_SIZE": str(args.steady_clients)}
        with serve(env) as server:
            steady = asyncio.run(drive(server, "a steady", args.steady_clients, args.steady_s))
        results.append(steady)
        capacity = steady.statuses[200] / steady.seconds
        found += problems(steady, {200}, max_growth_mib=300)
    if args.overload_s > 0:
        env = {"LAYERSCOPE_RATE_LIMIT": str(args.overload_rate_limit)}
        with serve(env) as server:
            overload = asyncio.run(drive(server, "b overload", args.overload_clients, args.overload_s))
        results.append(overload)
        found += problems(overload, {200, 429, 503}, max_growth_mib=500)
    if args.soak:
        rate = (capacity or 50.0) / 2  # half of what (a) measured
        clients = 4
        env = {"LAYERSCOPE_RATE_LIMIT": "0", "LAYERSCOPE_QUEUE_SIZE": str(clients)}
        with serve(env) as server:
            soak = asyncio.run(drive(server, "c soak", clients, args.soak_s, pace_s=clients / rate))
        results.append(soak)
        found += problems(soak, {200}, max_growth_mib=100)
    print(table(results))
    for line in found:
        print("FAIL", line)
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main())

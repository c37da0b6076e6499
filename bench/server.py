"""The real server in a subprocess: uvicorn on 127.0.0.1, rate limit off, random AlexNet weights."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx

from bench.common import ROOT, alexnet_weights
from scripts.load import free_port


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str
    ready_s: float  # from spawning the process to the first 200 from /readyz

    def cpu_s(self) -> float:
        """CPU seconds (user + system) the server process has used: load-independent cost."""
        with open(f"/proc/{self.process.pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def memory_mb(self) -> dict[str, float]:
        """VmRSS and its parts (RssAnon: the process's own; RssFile: mapped files such as
        libtorch, shared with every other process that maps them), from /proc (Linux)."""
        values: dict[str, float] = {}
        with open(f"/proc/{self.process.pid}/status", encoding="ascii") as status:
            for line in status:
                key = line.split(":", 1)[0]
                if key in ("VmRSS", "RssAnon", "RssFile"):
                    values[key] = int(line.split()[1]) / 1024
        return values

    def rss_mb(self) -> float:
        """Resident memory of the server process."""
        return self.memory_mb()["VmRSS"]


@contextmanager
def serve(
    models: str = "tiny,alexnet",
    timeout_s: float = 180.0,
    target: str = "app.main:app",
    environment: dict[str, str] | None = None,
    **settings: str,
) -> Iterator[Server]:
    """Start ``uvicorn app.main:app`` and yield once /readyz answers 200; stop it afterwards.

    ``settings`` become LAYERSCOPE_* environment variables (e.g. ``cache_entries="0"``).
    ``target`` serves another ASGI app the same way (the naive peer, ``bench.naive_server:app``),
    with ``environment`` added to its variables.
    """
    port = free_port()
    env = dict(os.environ)
    env.update(
        {
            "LAYERSCOPE_MODELS": models,
            "LAYERSCOPE_ALEXNET_WEIGHTS": str(alexnet_weights()),
            "LAYERSCOPE_RATE_LIMIT": "0",
            "LAYERSCOPE_RATE_LIMIT_KEYED": "0",
            "PYTHONPATH": str(ROOT),
        }
    )
    env.update({f"LAYERSCOPE_{key.upper()}": value for key, value in settings.items()})
    env.update(environment or {})
    command = [sys.executable, "-m", "uvicorn", target, "--host", "127.0.0.1", "--port", str(port),
               "--log-level", "warning", "--no-access-log"]
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        while True:
            if process.poll() is not None:
                error = process.stderr.read().decode(errors="replace") if process.stderr else ""
                raise RuntimeError(f"server exited with {process.returncode}: {error[-2000:]}")
            try:
                if httpx.get(f"{url}/readyz", timeout=1.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.perf_counter() - start > timeout_s:
                raise RuntimeError(f"server not ready after {timeout_s} s")
            time.sleep(0.01)
        yield Server(process, url, time.perf_counter() - start)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()

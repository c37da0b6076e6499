"""A real ``redis-server`` for the tests that share limits: loopback, a free port, no persistence."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

import redis

from tests.conftest import free_port


@contextmanager
def redis_server(port: int | None = None) -> Iterator[str]:
    """Start Debian's ``redis-server`` (``.ci/run`` installs it) and yield its URL; stop it after."""
    binary = shutil.which("redis-server")
    assert binary is not None, "redis-server is not installed (Debian: apt-get install redis-server)"
    port = port or free_port()
    with tempfile.TemporaryDirectory() as folder:
        args = ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", folder]
        process = subprocess.Popen([binary, *args], stdout=subprocess.DEVNULL)
        url = f"redis://127.0.0.1:{port}/0"
        try:
            client = redis.Redis.from_url(url, socket_connect_timeout=0.2)
            deadline = time.monotonic() + 15
            while True:
                try:
                    client.ping()
                    break
                except redis.ConnectionError:
                    assert process.poll() is None, "redis-server exited at start"
                    assert time.monotonic() < deadline, "redis-server did not answer within 15 s"
                    time.sleep(0.05)
            client.close()
            yield url
        finally:
            process.terminate()
            process.wait(10)

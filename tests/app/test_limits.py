"""Body cap, nothing on disk, no-store results, slow uploads: the limits on what a client sends.

The body cap is checked at the ASGI level with a receive() that counts what the app pulls,
so "refused before it is read into memory" is measured, not assumed. Slow uploads are
trickled over a real socket to a real server.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import Request
from fastapi.testclient import TestClient
from starlette.types import Message, Scope

from app.main import create_app
from app.settings import Settings
from scripts.load import Server, pictures
from tests.app.conftest import ACTIVATIONS, make_settings

MiB = 1024 * 1024
LIMIT = 10 * MiB


UNCAPPED = "/api/v1/test-only/uncapped"


async def read_everything(request: Request) -> dict[str, int]:
    """A route with no cap of its own: only the middleware stands between it and the body."""
    return {"length": len(await request.body())}


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    app = create_app(make_settings(cache_entries=0))
    app.add_api_route(UNCAPPED, read_everything, methods=["POST"])
    with TestClient(app) as c:
        yield c


def asgi_post(
    client: TestClient, headers: list[tuple[bytes, bytes]], chunks: Iterator[bytes], path: str = ACTIVATIONS
) -> dict[str, Any]:
    """Drive the app directly: feed ``chunks`` through receive(), record what was pulled and sent."""
    pulled = 0
    sent: list[Message] = []

    async def receive() -> Message:
        nonlocal pulled
        chunk = next(chunks, None)
        if chunk is None:
            return {"type": "http.request", "body": b"", "more_body": False}
        pulled += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(message: Message) -> None:
        sent.append(message)

    scope: Scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "headers": [(b"host", b"testserver"), *headers],
        "client": ("127.0.0.1", 5000), "server": ("testserver", 80), "state": {},
    }
    assert client.portal is not None
    client.portal.call(client.app, scope, receive, send)
    starts = [m for m in sent if m["type"] == "http.response.start"]
    return {"pulled": pulled, "starts": starts, "status": starts[0]["status"] if starts else None}


def endless(chunk_size: int, total: int) -> Iterator[bytes]:
    for _ in range(total // chunk_size):
        yield b"\0" * chunk_size


def test_declared_length_over_cap_is_refused_without_reading(client: TestClient) -> None:
    result = asgi_post(
        client, [(b"content-type", b"image/png"), (b"content-length", str(LIMIT + 1).encode())],
        endless(MiB, 50 * MiB),
    )
    assert result["status"] == 413
    assert result["pulled"] == 0


@pytest.mark.parametrize("declared", [None, b"1000"], ids=["chunked", "lying-content-length"])
def test_streamed_body_is_cut_off_at_the_cap(client: TestClient, declared: bytes | None) -> None:
    headers = [(b"content-type", b"image/png")]
    if declared is not None:
        headers.append((b"content-length", declared))
    result = asgi_post(client, headers, endless(256 * 1024, 64 * MiB))
    assert result["status"] == 413
    assert len(result["starts"]) == 1  # one answer only, even though the route saw the error too
    # Refused as soon as the count passed the cap: at most one chunk beyond it was ever held.
    assert LIMIT < result["pulled"] <= LIMIT + 256 * 1024


@pytest.mark.parametrize("declared", [None, b"1000", str(LIMIT + 1).encode()], ids=["chunked", "lying", "honest"])
def test_middleware_caps_a_route_that_reads_everything(client: TestClient, declared: bytes | None) -> None:
    headers = [(b"content-type", b"application/octet-stream")]
    if declared is not None:
        headers.append((b"content-length", declared))
    result = asgi_post(client, headers, endless(256 * 1024, 64 * MiB), path=UNCAPPED)
    assert result["status"] == 413
    assert len(result["starts"]) == 1
    assert result["pulled"] <= LIMIT + 256 * 1024
    # Below the cap the same route gets the whole body.
    small = asgi_post(client, [(b"content-type", b"application/octet-stream")], endless(MiB, 3 * MiB), path=UNCAPPED)
    assert small["status"] == 200 and small["pulled"] == 3 * MiB


def test_body_at_the_cap_is_read(client: TestClient) -> None:
    # Exactly the cap is allowed; the body is not an image, so the answer comes from the decoder.
    result = asgi_post(client, [(b"content-type", b"image/png")], endless(MiB, LIMIT))
    assert result["pulled"] == LIMIT
    assert result["status"] == 415


def test_too_large_is_problem_json_over_http(client: TestClient) -> None:
    response = client.post(ACTIVATIONS, content=b"\0" * (LIMIT + 1), headers={"content-type": "image/png"})
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith("body-too-large")


def test_multipart_over_cap_is_refused(client: TestClient) -> None:
    response = client.post(ACTIVATIONS, files={"image": ("big.png", b"\0" * (LIMIT + 10), "image/png")})
    assert response.status_code == 413


def _open_files() -> set[str]:
    """Regular files this process holds open (sockets, pipes, /dev are not files on disk)."""
    found = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("/") and not target.startswith(("/dev/", "/proc/")):
            found.add(target)
    return found


_OPENED: list[tuple[str, str]] = []
_RECORDING = threading.Event()


def _audit(event: str, args: tuple[Any, ...]) -> None:
    # Audit hooks cannot be removed, so this one only records while a test asks it to.
    if event == "open" and _RECORDING.is_set():
        _OPENED.append((str(args[0]), str(args[1])))


sys.addaudithook(_audit)


def test_uploads_never_touch_the_disk(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Large uploads (multipart and raw): no temp file, no file opened, by Python or below it."""
    big = pictures(1, size=1400)[0]  # ~5.6 MiB of incompressible PNG: over Starlette's 1 MiB spool size
    assert len(big) > 5 * MiB
    # One request first, so lazy imports are done before the watching starts.
    assert client.post(ACTIVATIONS, files={"image": ("x.png", big, "image/png")}).status_code == 200

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("a temporary file was created while handling an upload")

    for name in ("TemporaryFile", "NamedTemporaryFile", "SpooledTemporaryFile", "mkstemp", "mkdtemp"):
        monkeypatch.setattr(tempfile, name, refuse)
    # A private temp dir (other engineers share /tmp): anything landing there is ours.
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    before_files = _open_files()
    seen: set[str] = set()
    stop = threading.Event()

    def watch() -> None:  # sample open files while the requests run (catches C-level opens)
        while not stop.is_set():
            seen.update(_open_files())
            time.sleep(0.002)

    watcher = threading.Thread(target=watch)
    watcher.start()
    _OPENED.clear()
    _RECORDING.set()
    try:
        for _ in range(2):
            assert client.post(ACTIVATIONS, files={"image": ("x.png", big, "image/png")}).status_code == 200
            assert client.post(ACTIVATIONS, content=big, headers={"content-type": "image/png"}).status_code == 200
        bad = b"\0" * (8 * MiB)  # refused uploads too
        assert client.post(ACTIVATIONS, files={"image": ("x.png", bad, "image/png")}).status_code == 415
    finally:
        _RECORDING.clear()
        stop.set()
        watcher.join()
    # Only code may be opened (a lazy import); never a data file, wherever it lives.
    assert not [(path, mode) for path, mode in _OPENED if not path.endswith((".py", ".pyc", ".so"))]
    assert not {f for f in seen - before_files if not f.endswith((".py", ".pyc", ".so"))}
    assert list(tmp_path.iterdir()) == []


def test_results_are_not_stored(client: TestClient) -> None:
    image = pictures(1)[0]
    for fmt in ("json", "npz"):
        response = client.post(ACTIVATIONS, params={"format": fmt}, files={"image": ("a.png", image, "image/png")})
        assert response.status_code == 200
        assert response.headers["cache-control"] == "no-store"


# --- slow uploads over a real socket ---------------------------------------------------------


@pytest.fixture(scope="module")
def server(live_server: Server) -> Server:
    # Defaults for the slow-body knobs (1 KiB/s after a 5 s grace): the promise is about them.
    return live_server


def trickle(
    server: Server, length: int, byte_every_s: float, stop_after_s: float, address: str = "127.0.0.1"
) -> tuple[bytes, float]:
    """Send headers promising ``length`` bytes from ``address``, then one byte every ``byte_every_s``; the reply."""
    started = time.monotonic()
    with socket.create_connection(
        ("127.0.0.1", server.port), timeout=stop_after_s, source_address=(address, 0)
    ) as sock:
        head = (
            f"POST {ACTIVATIONS} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\n"
            f"Content-Length: {length}\r\n\r\n"
        )
        sock.sendall(head.encode())
        sock.setblocking(False)
        reply = b""
        while time.monotonic() - started < stop_after_s:
            try:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                reply += chunk
                if b"\r\n\r\n" in reply:
                    break
            except BlockingIOError:
                pass
            with contextlib.suppress(OSError):  # the server closed its side; the reply is buffered
                sock.send(b"\x89")
            time.sleep(byte_every_s)
    return reply, time.monotonic() - started


def test_trickled_body_is_cut_off_with_408(server: Server) -> None:
    reply, took = trickle(server, 100_000, byte_every_s=0.05, stop_after_s=15)
    assert reply.startswith(b"HTTP/1.1 408"), reply[:200]
    assert took < 10.0
    assert b"slow-upload" in reply


def test_slow_bodies_do_not_hold_the_model(server: Server) -> None:
    """More trickling uploads than the engine has slots, and normal requests still get 200."""
    slots = 1 + Settings().queue_size  # the default capacity
    results: list[tuple[bytes, float]] = []
    threads = [
        # Each from its own address: one client's in-flight cap would refuse most of them at once.
        threading.Thread(target=lambda i=i: results.append(trickle(server, 50_000, 0.2, 12, f"127.0.6.{i + 1}")))
        for i in range(slots + 2)
    ]
    for thread in threads:
        thread.start()
    time.sleep(1.0)  # every trickler is now inside the route, past engine.admit()
    try:
        statuses = [
            httpx.post(server.url + ACTIVATIONS, files={"image": ("a.png", p, "image/png")}, timeout=10).status_code
            for p in pictures(3, seed=1)
        ]
    finally:
        for thread in threads:
            thread.join()
    assert statuses == [200, 200, 200]
    assert all(reply.startswith(b"HTTP/1.1 408") for reply, _took in results)


def test_fast_enough_upload_is_not_cut(server: Server) -> None:
    """A body sent in pieces over several seconds, but above the minimum rate, is accepted."""
    image = pictures(1, size=160, seed=3)[0]
    pieces = [image[i : i + 8192] for i in range(0, len(image), 8192)]

    async def paced() -> Any:
        for piece in pieces:
            yield piece
            await asyncio.sleep(6.0 / len(pieces))

    async def post() -> int:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            response = await http.post(ACTIVATIONS, content=paced(), headers={"content-type": "image/png"})
            return response.status_code

    assert asyncio.run(post()) == 200


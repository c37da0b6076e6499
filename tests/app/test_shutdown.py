"""Graceful shutdown of the real ``layerscope serve``: SIGTERM finishes what is in flight,
refuses new connections, and the process exits 0.

The in-flight request is an upload paced over a few seconds (well above the slow-body
minimum), so SIGTERM arrives while the server is still reading it.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from scripts.load import Server, pictures, serve
from tests.app.conftest import ACTIVATIONS

UPLOAD_S = 4.0


async def paced(data: bytes, seconds: float) -> AsyncIterator[bytes]:
    pieces = [data[i : i + 4096] for i in range(0, len(data), 4096)]
    for piece in pieces:
        yield piece
        await asyncio.sleep(seconds / len(pieces))


async def new_connection_refused(port: int) -> bool:
    try:
        _reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return True
    writer.close()
    return False


async def scenario(server: Server) -> tuple[int, bool, float]:
    image = pictures(1, size=128, seed=5)[0]  # ~50 KB over 4 s: ~12 KB/s, far above 1 KiB/s
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
        upload = asyncio.create_task(
            http.post(ACTIVATIONS, content=paced(image, UPLOAD_S), headers={"content-type": "image/png"})
        )
        await asyncio.sleep(1.5)  # the upload is under way
        assert not upload.done()
        server.proc.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        await asyncio.sleep(0.5)
        refused = await new_connection_refused(server.port)
        response = await upload
        return response.status_code, refused, signalled


@pytest.mark.slow
def test_sigterm_drains_in_flight_refuses_new_and_exits_zero() -> None:
    with serve({"LAYERSCOPE_RATE_LIMIT": "0"}, ready_s=240) as server:
        status, refused, signalled = asyncio.run(scenario(server))
        code = server.proc.wait(timeout=30)
        stopped_after = time.monotonic() - signalled
        log = server.output()
    assert status == 200  # the request in flight at SIGTERM was finished, not dropped
    assert refused  # no new connection once shutdown began
    assert code == 0, log
    assert stopped_after < 15 + 5, stopped_after  # within the graceful window
    assert "Shutting down" in log


def test_graceful_window_comes_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI hands the Settings' window to uvicorn (15 s unless LAYERSCOPE_GRACEFUL_SHUTDOWN_S says)."""
    import uvicorn

    from app import cli

    seen: dict[str, object] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: seen.update(kwargs))
    monkeypatch.setattr("app.main.create_app", lambda settings: object())
    monkeypatch.setenv("LAYERSCOPE_GRACEFUL_SHUTDOWN_S", "7")
    previous = signal.getsignal(signal.SIGTERM)
    try:
        assert cli.main(["serve", "--port", "1"]) == 0
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert seen["timeout_graceful_shutdown"] == 7

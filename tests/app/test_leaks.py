"""No leaks: 2,000 requests in a row leave memory, open files and threads flat.

Every request posts a different small picture, so each one runs the whole path (body
intake, decode, forward pass with hooks, encoding) and the LRU cache keeps evicting; a
few refused requests (bad bytes, unknown layers) are mixed in, because error paths leak
too. A warm-up first lets allocators, lazy imports and thread pools reach their steady
state (300 requests: the worker threads' allocator arenas take a while to settle); then the
figures before, halfway through and after 2,000 requests are compared.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from scripts.load import pictures
from tests.app.conftest import ACTIVATIONS, make_settings

REQUESTS = 2000
WARMUP = 300
MiB = 1024 * 1024


def _release_free_heap() -> None:
    # glibc keeps freed memory in per-thread arenas and hands it back to the OS at its own
    # pace, so RSS can jump by tens of MiB with nothing live behind it (seen: +30 MiB in one
    # half of a full-suite run, -14 in the other). malloc_trim returns what is free first;
    # memory a leak holds is live and still counts.
    libc = ctypes.util.find_library("c")
    trim = getattr(ctypes.CDLL(libc), "malloc_trim", None) if libc else None
    if trim is not None:
        trim(0)


def figures() -> tuple[float, int, int]:
    """(RSS in MiB, open fds, native threads) of this process."""
    gc.collect()
    _release_free_heap()
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return int(status["VmRSS"].split()[0]) / 1024, len(os.listdir("/proc/self/fd")), int(status["Threads"])


def one_request(client: TestClient, picture: bytes, index: int) -> int:
    if index % 50 == 7:  # an error path now and then
        return client.post(ACTIVATIONS, content=b"garbage" * 10, headers={"content-type": "image/png"}).status_code
    if index % 50 == 23:
        return client.post(ACTIVATIONS, params={"layers": "nope"}, content=picture).status_code
    # Mostly npz (the cheaper answer) to keep the run short; every tenth builds the JSON atlases.
    fmt = "json" if index % 10 == 0 else "npz"
    png = {"content-type": "image/png"}
    return client.post(ACTIVATIONS, params={"format": fmt}, content=picture, headers=png).status_code


@pytest.mark.slow
def test_two_thousand_requests_leave_resources_flat() -> None:
    images = pictures(WARMUP + REQUESTS, size=32, seed=11)
    with TestClient(create_app(make_settings(cache_entries=64))) as client:
        for i in range(WARMUP):
            one_request(client, images[i], i)
        rss_before, fds_before, threads_before = figures()
        statuses = [one_request(client, images[WARMUP + i], i) for i in range(REQUESTS // 2)]
        rss_half, _, _ = figures()
        statuses += [one_request(client, images[WARMUP + i], i) for i in range(REQUESTS // 2, REQUESTS)]
        rss_after, fds_after, threads_after = figures()
        cache_size = len(client.app.state.engine.cache)  # type: ignore[attr-defined]
    print(
        f"\nRSS {rss_before:.1f} -> {rss_half:.1f} -> {rss_after:.1f} MiB; fds {fds_before} -> {fds_after}; "
        f"threads {threads_before} -> {threads_after}"
    )
    assert statuses.count(200) == REQUESTS - 2 * (REQUESTS // 50)  # the model really ran
    assert set(statuses) == {200, 415, 422}
    assert cache_size == 64
    assert rss_after - rss_before < 50
    assert rss_after - rss_half < 25  # a leak grows in both halves; allocator warm-up does not
    assert fds_after - fds_before == 0
    assert threads_after - threads_before == 0

"""Teaching's limits: every one a clear 4xx problem; sessions expire; nothing on disk; memory flat.

The session store's clock is replaced by one the test moves, so "30 idle minutes" is tested
without waiting for them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from app.heavy import HeavyJob
from app.main import create_app
from app.teach import TeachStore
from tests.app.conftest import make_settings
from tests.app.test_leaks import figures
from tests.app.test_teach_api import TEACH, add, open_session
from tests.conftest import data_files, encode, opened_files

PNG = {"content-type": "image/png"}
OCTETS = {"content-type": "application/octet-stream"}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def small() -> Iterator[tuple[TestClient, Clock]]:
    """A server with 3 sessions of 4 examples each, idle for 60 s at most, on a clock we move."""
    clock = Clock()
    with TestClient(create_app(make_settings(teach_sessions=3, teach_examples=4, teach_idle_s=60))) as client:
        store: TeachStore = client.app.state.teach  # type: ignore[attr-defined]
        store.clock = clock
        yield client, clock


def flat(value: int) -> Image.Image:
    return Image.fromarray(np.full((48, 48, 3), value, np.uint8))


def problem(response: Any, status: int, slug: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"].endswith("/" + slug) and body["status"] == status and body["detail"]


def forget_all(client: TestClient, clock: Clock) -> None:
    clock.now += 3600
    client.app.state.teach.sweep()  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("body", "status", "slug"),
    [
        ({"model": "tiny", "classes": ["only"]}, 422, "invalid-parameter"),
        ({"model": "tiny", "classes": ["a", "b", "c", "d", "e", "f", "g"]}, 422, "invalid-parameter"),
        ({"model": "tiny", "classes": ["mug", "MUG "]}, 422, "bad-classes"),
        ({"model": "tiny", "classes": ["mug", "pen\u202e"]}, 422, "invalid-parameter"),
        ({"model": "tiny", "classes": ["mug", ""]}, 422, "invalid-parameter"),
        ({"model": "tiny", "classes": ["mug", "   "]}, 422, "invalid-parameter"),
        ({"model": "tiny", "classes": ["mug", "x" * 40]}, 422, "invalid-parameter"),
        ({"model": "tiny", "classes": ["mug", "a\u0000b"]}, 422, "invalid-parameter"),
        ({"model": "tiny", "classes": "mug,pen"}, 422, "invalid-parameter"),
        ({"model": "tiny"}, 422, "invalid-parameter"),
        ({"model": "resnet9000", "classes": ["mug", "pen"]}, 404, "unknown-model"),
    ],
)
def test_a_bad_new_session_is_refused(
    small: tuple[TestClient, Clock], body: dict[str, Any], status: int, slug: str
) -> None:
    client, _ = small
    problem(client.post(TEACH, json=body), status, slug)


def test_at_most_so_many_sessions_and_idle_ones_expire(small: tuple[TestClient, Clock]) -> None:
    client, clock = small
    forget_all(client, clock)
    ids = [open_session(client, ["mug", "pen"]) for _ in range(3)]
    full = client.post(TEACH, json={"model": "tiny", "classes": ["mug", "pen"]})
    problem(full, 429, "too-many-sessions")
    assert full.headers["retry-after"]
    clock.now += 40
    assert client.get(f"{TEACH}/{ids[0]}/export").status_code == 409  # touched (not trained): lives on
    clock.now += 30  # ids[1] and ids[2] idle 70 s, ids[0] 30 s
    problem(client.get(f"{TEACH}/{ids[1]}/export"), 404, "unknown-session")
    assert client.get(f"{TEACH}/{ids[0]}/export").status_code == 409
    assert len(client.app.state.teach.sessions) == 1  # type: ignore[attr-defined]
    assert open_session(client, ["mug", "pen"])  # a freed place is taken again


def test_every_session_limit_is_a_clear_problem(small: tuple[TestClient, Clock]) -> None:
    client, clock = small
    forget_all(client, clock)
    session = open_session(client, ["mug", "pen"])
    url = f"{TEACH}/{session}"
    problem(client.post(f"{url}/predict", content=encode(flat(1)), headers=PNG), 409, "not-trained")
    problem(client.get(f"{url}/export"), 409, "not-trained")
    def example(label: str | None, body: bytes, kind: str = "image/png") -> Any:
        params = {} if label is None else {"label": label}
        return client.post(f"{url}/examples", params=params, content=body, headers={"content-type": kind})

    problem(example("cup", encode(flat(1))), 422, "unknown-label")
    problem(example(None, encode(flat(1))), 422, "invalid-parameter")
    problem(example("mug", b"not a picture"), 415, "unsupported-media-type")
    problem(example("mug", b"{}", "application/json"), 415, "unsupported-media-type")
    problem(example("mug", b"\x89PNG\r\n\x1a\n" + b"\0" * 40), 400, "corrupt-image")
    add(client, session, " MUG ", flat(10))  # a label matches its class trimmed, ignoring case
    problem(client.post(f"{url}/train"), 409, "not-enough-examples")
    for value in (20, 30, 40):
        add(client, session, "pen" if value > 20 else "mug", flat(value))
    problem(example("pen", encode(flat(50))), 409, "too-many-examples")
    problem(client.get(f"{TEACH}/{'x' * 65}/export"), 422, "invalid-parameter")
    assert client.post(f"{url}/train").status_code == 200
    assert client.post(f"{url}/predict", content=encode(flat(12)), headers=PNG).status_code == 200


def test_a_session_trains_once_at_a_time(small: tuple[TestClient, Clock]) -> None:
    client, clock = small
    forget_all(client, clock)
    session = open_session(client, ["mug", "pen"])
    for label, value in (("mug", 1), ("mug", 2), ("pen", 200), ("pen", 210)):
        add(client, session, label, flat(value))
    store: TeachStore = client.app.state.teach  # type: ignore[attr-defined]
    lock = store.sessions[session].lock
    client.portal.call(lock.acquire)  # type: ignore[union-attr]
    try:
        problem(client.post(f"{TEACH}/{session}/train"), 409, "training-in-progress")
        problem(client.post(f"{TEACH}/{session}/train", headers={"accept": "text/event-stream"}), 409,
                "training-in-progress")
        clock.now += 3600
        store.sweep()
        assert session in store.sessions  # a session that is training is not forgotten under it
    finally:
        lock.release()


def test_a_bad_head_file_is_refused(small: tuple[TestClient, Clock]) -> None:
    client, clock = small
    forget_all(client, clock)
    problem(client.post(f"{TEACH}/import", content=b"garbage", headers=OCTETS), 422, "bad-head")
    problem(client.post(f"{TEACH}/import", content=b"\0" * (2 * 1024 * 1024), headers=OCTETS), 413, "body-too-large")
    session = open_session(client, ["mug", "pen"])
    for label, value in (("mug", 1), ("mug", 2), ("pen", 200), ("pen", 210)):
        add(client, session, label, flat(value))
    assert client.post(f"{TEACH}/{session}/train").status_code == 200
    good = client.get(f"{TEACH}/{session}/export").content
    problem(client.post(f"{TEACH}/import", content=good[:-8], headers=OCTETS), 422, "bad-head")
    tampered = good.replace(b'"tiny"', b'"nope"')
    problem(client.post(f"{TEACH}/import", content=tampered, headers=OCTETS), 422, "bad-head")
    assert client.post(f"{TEACH}/import", content=good, headers=OCTETS).status_code == 201


# ------------------------------------------------------------------ nothing on disk

def test_teaching_writes_nothing_and_opens_no_data_file(small: tuple[TestClient, Clock], tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    client, clock = small
    forget_all(client, clock)
    monkeypatch.setenv("TMPDIR", str(tmp_path))

    def one_round() -> None:
        session = open_session(client, ["mug", "pen"])
        for label, value in (("mug", 1), ("mug", 2), ("pen", 200), ("pen", 210)):
            add(client, session, label, flat(value))
        assert client.post(f"{TEACH}/{session}/train", headers={"accept": "text/event-stream"}).status_code == 200
        picture = {"image": ("a.png", encode(flat(5)), "image/png")}
        assert client.post(f"{TEACH}/{session}/predict", files=picture).status_code == 200
        head = client.get(f"{TEACH}/{session}/export").content
        twin = client.post(f"{TEACH}/import", content=head, headers=OCTETS).json()["session"]
        assert client.delete(f"{TEACH}/{twin}").status_code == 204
        assert client.delete(f"{TEACH}/{session}").status_code == 204

    one_round()  # lazy imports and the dissection file's first read happen here
    with opened_files() as opened:
        one_round()
    assert data_files(opened) == []
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ memory stays bounded


@pytest.mark.slow
def test_a_thousand_sessions_created_and_expired_leave_memory_flat(small: tuple[TestClient, Clock]) -> None:
    client, clock = small
    store: TeachStore = client.app.state.teach  # type: ignore[attr-defined]
    pictures = [encode(flat(v)) for v in range(256)]

    def sessions(count: int, start: int) -> None:
        for i in range(count):
            if i % 3 == 0:
                forget_all(client, clock)
            session = open_session(client, ["mug", "pen"])
            body = pictures[(start + i) % 256]
            response = client.post(f"{TEACH}/{session}/examples", params={"label": "mug"}, content=body, headers=PNG)
            assert response.status_code == 200

    sessions(200, 0)  # warm-up: allocators and pools reach their steady state
    rss_before, _, _ = figures()
    sessions(500, 200)
    rss_half, _, _ = figures()
    sessions(500, 700)
    forget_all(client, clock)
    rss_after, _, _ = figures()
    print(f"\nRSS {rss_before:.1f} -> {rss_half:.1f} -> {rss_after:.1f} MiB")
    assert not store.sessions
    assert rss_after - rss_before < 20
    assert rss_after - rss_half < 10


def test_a_full_heavy_lane_refuses_training_before_any_event() -> None:
    """Training waits for the heavy lane; with no place left the answer is a plain 503, events asked or not."""
    settings = make_settings(heavy_jobs=1, heavy_queue=0)
    with TestClient(create_app(settings)) as client:
        session = open_session(client, ["mug", "pen"])
        for label, value in (("mug", 1), ("mug", 2), ("pen", 200), ("pen", 210)):
            add(client, session, label, flat(value))
        lane = client.app.state.engine.heavy  # type: ignore[attr-defined]

        async def never() -> bool:
            return False

        async def occupy() -> HeavyJob:
            job = HeavyJob("someone else", never, lane._run_on_thread)
            lane.running.append(job)
            return job

        job = client.portal.call(occupy)  # type: ignore[union-attr]
        try:
            for headers in ({}, {"accept": "text/event-stream"}):
                refused = client.post(f"{TEACH}/{session}/train", headers=headers)
                problem(refused, 503, "busy")
                assert refused.headers["retry-after"]
        finally:
            lane.running.remove(job)
        assert client.post(f"{TEACH}/{session}/train").status_code == 200  # the place is free again
        assert not client.app.state.teach.sessions[session].lock.locked()  # type: ignore[attr-defined]

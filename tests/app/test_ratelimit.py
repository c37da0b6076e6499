"""Per-client rate limits: 429 + Retry-After, keyed clients, proxies, and what is never limited.

Refused requests cost nothing, so most tests post a few bytes (a 415) rather than a
picture: the limit counts every request that makes the model work, whatever its outcome:
API POSTs, and the GETs of a model's filters and of one unit.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from app.limits.memory import TokenBuckets
from app.main import create_app
from app.settings import Settings
from tests.app.conftest import ACTIVATIONS, make_settings


@contextmanager
def client_for(peer: str = "203.0.113.7", **overrides: Any) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings(**overrides)), client=(peer, 40000)) as client:
        yield client


def post(client: TestClient, headers: dict[str, str] | None = None) -> httpx.Response:
    return client.post(ACTIVATIONS, content=b"junk", headers={"content-type": "image/png", **(headers or {})})


def statuses(client: TestClient, count: int, headers: dict[str, str] | None = None) -> list[int]:
    return [post(client, headers).status_code for _ in range(count)]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_refills_at_the_configured_rate() -> None:
    clock = FakeClock()
    buckets = TokenBuckets(per_minute=3, clock=clock)
    assert [buckets.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("a") == pytest.approx(20.0)  # one token every 60/3 s
    assert buckets.take("b") == 0.0  # another client is not affected
    clock.now += 20.0
    assert buckets.take("a") == 0.0
    assert buckets.take("a") > 0.0


def test_token_buckets_forget_the_least_recent_clients() -> None:
    buckets = TokenBuckets(per_minute=1, max_clients=100)
    for i in range(1000):
        buckets.take(f"client-{i}")
    assert len(buckets) == 100


def test_anonymous_limit_answers_429_with_retry_after() -> None:
    with client_for(rate_limit=3) as client:
        assert statuses(client, 3) == [415, 415, 415]
        refused = post(client)
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 20
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["status"] == 429


def test_spoofed_forwarded_for_does_not_bypass_the_limit() -> None:
    with client_for(rate_limit=3) as client:
        got = [post(client, {"X-Forwarded-For": f"198.51.100.{i}"}).status_code for i in range(6)]
    assert got == [415, 415, 415, 429, 429, 429]


def test_trusted_proxy_is_believed_up_to_the_first_untrusted_hop() -> None:
    with client_for(peer="10.0.0.5", rate_limit=2, trusted_proxies="10.0.0.0/8") as client:
        # Two real clients behind the proxy have a bucket each.
        assert statuses(client, 2, {"X-Forwarded-For": "198.51.100.1"}) == [415, 415]
        assert statuses(client, 2, {"X-Forwarded-For": "198.51.100.2"}) == [415, 415]
        assert statuses(client, 1, {"X-Forwarded-For": "198.51.100.1"}) == [429]
        # A client writing its own X-Forwarded-For: the proxy appends the real address on the
        # right, and only that hop counts, so varying the left part buys nothing.
        spoofed = [
            post(client, {"X-Forwarded-For": f"192.0.2.{i}, 198.51.100.2, 10.0.0.9"}).status_code
            for i in range(3)
        ]
        assert spoofed == [429, 429, 429]


def test_forwarded_for_from_an_untrusted_peer_is_ignored() -> None:
    with client_for(peer="203.0.113.9", rate_limit=2, trusted_proxies="10.0.0.0/8") as client:
        got = [post(client, {"X-Forwarded-For": f"198.51.100.{i}"}).status_code for i in range(3)]
    assert got == [415, 415, 429]


def test_api_keys_get_their_own_larger_limit() -> None:
    with client_for(rate_limit=2, rate_limit_keyed=5, api_keys="key-one, key-two") as client:
        assert statuses(client, 5, {"X-API-Key": "key-one"}) == [415] * 5
        assert statuses(client, 1, {"X-API-Key": "key-one"}) == [429]
        assert statuses(client, 2, {"X-API-Key": "key-two"}) == [415, 415]  # each key its own bucket
        assert statuses(client, 3) == [415, 415, 429]  # anonymous: by address, separately
        # An unknown key is no key at all: it falls into the (spent) anonymous bucket.
        assert statuses(client, 1, {"X-API-Key": "guessed"}) == [429]


def test_health_pages_static_and_reads_are_never_limited() -> None:
    with client_for(rate_limit=1) as client:
        assert statuses(client, 2) == [415, 429]
        for _ in range(5):
            assert client.get("/healthz").status_code == 200
            assert client.get("/").status_code == 200
            assert client.get("/static/nope.js").status_code == 404
            assert client.get("/api/v1/models").status_code == 200
            assert client.get("/api/v1/models/tiny").status_code == 200
            assert client.get("/api/v1/models/tiny/units", params={"layer": "features.9"}).status_code == 200
            assert client.get("/openapi.json").status_code == 200


UNIT = "/api/v1/models/tiny/units/features.9/0"  # a shipped sprite: quick, but the model's work


def test_gets_that_make_the_model_work_are_limited_too() -> None:
    with client_for(rate_limit=4) as client:
        got = [client.get(UNIT).status_code for _ in range(3)]
        got.append(client.get("/api/v1/models/tiny/filters").status_code)
        refused = [client.get(UNIT), client.get("/api/v1/models/tiny/filters"), post(client)]
    assert got == [200, 200, 200, 200]
    assert [r.status_code for r in refused] == [429, 429, 429]  # one bucket for GETs and POSTs alike
    assert all(r.headers["content-type"] == "application/problem+json" and "retry-after" in r.headers for r in refused)


def test_zero_turns_limiting_off() -> None:
    with client_for(rate_limit=0, rate_limit_keyed=0, api_keys="k") as client:
        assert set(statuses(client, 40)) == {415}
        assert set(statuses(client, 10, {"X-API-Key": "k"})) == {415}


def test_defaults_leave_room_for_normal_use(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("LAYERSCOPE_RATE_LIMIT", "LAYERSCOPE_RATE_LIMIT_KEYED"):
        monkeypatch.delenv(name, raising=False)
    defaults = Settings()
    assert defaults.rate_limit == 600 and defaults.rate_limit_keyed == 3000
    # The page's live webcam mode sends 5 frames a second: a minute of it must fit.
    assert defaults.rate_limit >= 5 * 60
    # A pupil trying picture after picture (a burst of 60 in a minute) is never refused.
    with client_for(rate_limit=defaults.rate_limit) as client:
        assert set(statuses(client, 60)) == {415}


def test_limits_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAYERSCOPE_RATE_LIMIT", "7")
    monkeypatch.setenv("LAYERSCOPE_RATE_LIMIT_KEYED", "70")
    monkeypatch.setenv("LAYERSCOPE_API_KEYS", "a,b")
    monkeypatch.setenv("LAYERSCOPE_TRUSTED_PROXIES", "10.0.0.0/8")
    settings = Settings()
    assert (settings.rate_limit, settings.rate_limit_keyed) == (7, 70)
    assert (settings.api_keys, settings.trusted_proxies) == ("a,b", "10.0.0.0/8")


@pytest.mark.parametrize(("trusted", "believed"), [("", False), ("10.0.0.0/8", True)])
def test_uvicorn_believes_forwarded_headers_only_from_configured_proxies(
    monkeypatch: pytest.MonkeyPatch, trusted: str, believed: bool
) -> None:
    """uvicorn would otherwise rewrite the client address from X-Forwarded-For sent via 127.0.0.1."""
    import signal

    import uvicorn

    from app import cli

    seen: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: seen.update(kwargs))
    monkeypatch.setattr("app.main.create_app", lambda settings: object())
    monkeypatch.setenv("LAYERSCOPE_TRUSTED_PROXIES", trusted)
    previous = signal.getsignal(signal.SIGTERM)
    try:
        cli.main(["serve", "--port", "1"])
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert seen["proxy_headers"] is believed
    assert seen["forwarded_allow_ips"] == (trusted or None)

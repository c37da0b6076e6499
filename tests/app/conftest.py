"""Fixtures for the app tests: settings for the tiny model, an in-process client, a live server.

``make_settings`` turns the rate limit off unless a test asks for one: most tests post
far more than a real client would. The ``fuzz`` marker is registered here (pyproject's
list is the lead's) so ``--strict-markers`` accepts it; fuzz tests still run in ``make test``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings
from scripts.load import Server, serve

ACTIVATIONS = "/api/v1/models/tiny/activations"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "fuzz: property-based fuzzing of hostile input (runs in make test)")


def make_settings(**overrides: Any) -> Settings:
    """Settings for the tiny model only, rate limit off; ``overrides`` win."""
    return Settings(**{"models": "tiny", "rate_limit": 0, "rate_limit_keyed": 0, **overrides})


@pytest.fixture(scope="module")
def tiny_client() -> Iterator[TestClient]:
    with TestClient(create_app(make_settings())) as client:
        yield client


@pytest.fixture(scope="session")
def live_server() -> Iterator[Server]:
    """One real ``layerscope serve`` on 127.0.0.1 for the whole session (starting one costs
    seconds): rate limit and result cache off, every other limit at its default."""
    with serve({"LAYERSCOPE_RATE_LIMIT": "0", "LAYERSCOPE_CACHE_ENTRIES": "0"}, ready_s=240) as server:
        yield server

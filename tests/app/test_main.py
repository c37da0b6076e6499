"""The app's wiring: what create_app's startup and shutdown leave behind."""

from __future__ import annotations

import gc

from fastapi.testclient import TestClient

from app.main import create_app
from tests.app.conftest import make_settings


def test_objects_loaded_at_startup_are_kept_out_of_full_collections_while_serving() -> None:
    assert gc.get_freeze_count() == 0
    with TestClient(create_app(make_settings())) as client:
        # torch, the models and the app: tens of thousands of objects a full pass no longer walks
        assert gc.get_freeze_count() > 10_000
        assert client.get("/healthz").status_code == 200
    assert gc.get_freeze_count() == 0  # handed back to the collector at shutdown

"""Schemathesis against our own OpenAPI document: no server error, no response off the schema.

Every operation in /openapi.json is called with generated parameters and bodies; each
response is checked for a 5xx, an undocumented status code or media type, and a body
that does not match its documented schema (problem details included).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from app.main import create_app
from tests.app.conftest import make_settings
from tests.app.test_teach_api import head_for

schemathesis = pytest.importorskip("schemathesis")


APP = create_app(make_settings())
# Loading the document needs no lifespan; calling the operations does (fixture below).
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)
# A taught head (POST /api/v1/teach/import) is a file only the server writes, which made-up
# bytes never are: the generated body is a real (untaught) head for tiny.
schemathesis.openapi.media_type("application/octet-stream", st.builds(lambda: head_for(APP.state.registry["tiny"])))


@pytest.fixture(scope="module", autouse=True)
def _lifespan() -> Iterator[None]:
    with TestClient(APP):  # models loaded and the engine started for the generated calls
        yield


@schema.parametrize()
@settings(max_examples=30, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_every_operation_keeps_its_contract(case: Any) -> None:
    case.call_and_validate()


def test_the_document_names_our_problem_shape() -> None:
    with TestClient(create_app(make_settings())) as client:
        spec = client.get("/openapi.json").json()
    post = spec["paths"]["/api/v1/models/{model_id}/activations"]["post"]["responses"]
    for status in ("400", "404", "408", "413", "415", "422", "429", "503"):
        assert "application/problem+json" in post[status]["content"], status
    assert spec["paths"]["/readyz"]["get"]["responses"]["503"]["content"]["application/problem+json"]

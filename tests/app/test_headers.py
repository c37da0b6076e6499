"""Security headers on every path (errors and 404s too), CORS, the docs, and no reflection.

A hostile string sent in a file name, EXIF text, a layer name, a query or a header must
never come back in a response body unescaped, and no response may carry a stack trace.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image

from app.main import create_app
from app.middleware.headers import STRICT_CSP
from tests.app.conftest import ACTIVATIONS, make_settings
from tests.conftest import encode, scene

EXPECTED = {
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
        "media-src 'self' blob:; connect-src 'self'; frame-ancestors 'none'; object-src 'none'; "
        "base-uri 'none'; form-action 'self'"
    ),
    "permissions-policy": "camera=(self), microphone=(), geolocation=()",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}
HOSTILE = "<script>alert('x')</script>"


def boom() -> None:
    raise RuntimeError("secret internals /srv/app/models.py line 42")


@pytest.fixture(scope="module")
def app() -> FastAPI:
    application = create_app(make_settings(max_body_bytes=20_000, rate_limit=3))
    application.add_api_route("/api/v1/boom", boom, methods=["GET"])  # a route that fails on purpose
    return application


@pytest.fixture(scope="module")
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def picture() -> bytes:
    return encode(scene(32, 32), "PNG")


def every_kind_of_response(client: TestClient) -> dict[str, httpx.Response]:
    return {
        "page": client.get("/"),
        "healthz": client.get("/healthz"),
        "api-json": client.get("/api/v1/models"),
        "openapi": client.get("/openapi.json"),
        "404": client.get("/no/such/page"),
        "static-404": client.get("/static/nope.js"),
        "405": client.delete("/api/v1/models"),
        # Three POSTs use up the limit of 3 per minute, the fourth is refused.
        "200-post": client.post(ACTIVATIONS, content=picture(), headers={"content-type": "image/png"}),
        "422": client.post(ACTIVATIONS, params={"top_k": 0}, content=b"x"),
        "413-declared": client.post(ACTIVATIONS, content=b"x" * 30_000, headers={"content-type": "image/png"}),
        "429": client.post(ACTIVATIONS, content=picture(), headers={"content-type": "image/png"}),
        "500": client.get("/api/v1/boom"),
    }


def test_every_response_has_the_security_headers(client: TestClient) -> None:
    responses = every_kind_of_response(client)
    statuses = {name: r.status_code for name, r in responses.items()}
    assert statuses == {
        "page": 200, "healthz": 200, "api-json": 200, "openapi": 200, "404": 404, "static-404": 404,
        "405": 405, "422": 422, "413-declared": 413, "200-post": 200, "429": 429, "500": 500,
    }
    for name, response in responses.items():
        for header, value in EXPECTED.items():
            assert response.headers.get(header) == value, (name, header)


def test_server_error_says_nothing_about_the_code(client: TestClient) -> None:
    response = client.get("/api/v1/boom")
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert "secret" not in response.text and "Traceback" not in response.text and ".py" not in response.text


def test_docs_work_offline_under_the_strict_policy(client: TestClient) -> None:
    docs = client.get("/docs")
    assert docs.status_code == 200
    assert docs.headers["content-security-policy"] == STRICT_CSP
    assert "<script>" not in docs.text and "http" not in docs.text  # no inline code, no CDN
    assets = re.findall(r'(?:src|href)="([^"]+)"', docs.text)
    assert len(assets) == 4
    for asset in assets:
        response = client.get(asset)
        assert response.status_code == 200, asset
        assert response.headers["content-security-policy"] == STRICT_CSP
    spec = client.get("/openapi.json")
    assert spec.headers["content-security-policy"] == STRICT_CSP
    assert "/api/v1/models/{model_id}/activations" in spec.json()["paths"]


def test_api_is_readable_from_any_origin_without_credentials(client: TestClient) -> None:
    origin = {"Origin": "https://teacher.example"}
    response = client.get("/api/v1/models", headers=origin)
    assert response.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in response.headers
    preflight = client.options(
        ACTIVATIONS,
        headers={**origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"},
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert EXPECTED["x-frame-options"] == preflight.headers["x-frame-options"]


def test_page_and_health_stay_same_origin(client: TestClient) -> None:
    origin = {"Origin": "https://elsewhere.example"}
    for path in ("/", "/healthz", "/static/nope.js"):
        assert "access-control-allow-origin" not in client.get(path, headers=origin).headers
    preflight = client.options("/", headers={**origin, "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in preflight.headers


# --- no reflection ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def open_client() -> Iterator[TestClient]:
    with TestClient(create_app(make_settings())) as c:
        yield c


def jpeg_with_hostile_exif(truncate: bool) -> bytes:
    exif = Image.Exif()
    exif[0x010E] = HOSTILE  # ImageDescription
    exif[0x013B] = HOSTILE  # Artist
    buffer = io.BytesIO()
    scene(64, 48).save(buffer, "JPEG", exif=exif)
    data = buffer.getvalue()
    return data[: len(data) * 2 // 3] if truncate else data


def hostile_requests(client: TestClient) -> Iterator[httpx.Response]:
    base = "/api/v1/models/tiny/activations"
    yield client.post(base, files={"image": (HOSTILE + ".png", b"not a picture", "image/png")})
    yield client.post(base, files={HOSTILE: ("a.png", picture(), "image/png")})
    yield client.post(base, files={"image": ("a.png", picture(), HOSTILE)})
    yield client.post(base, content=jpeg_with_hostile_exif(truncate=True), headers={"content-type": "image/jpeg"})
    yield client.post(base, content=b"x", headers={"content-type": HOSTILE})
    yield client.post(base, params={"layers": HOSTILE}, content=picture(), headers={"content-type": "image/png"})
    yield client.post(base, params={"layers": "conv1," + HOSTILE}, files={"image": ("a.png", picture())})
    yield client.post(base, params={"top_k": HOSTILE}, files={"image": ("a.png", picture())})
    yield client.post(base, params={"format": HOSTILE}, files={"image": ("a.png", picture())})
    yield client.post(f"/api/v1/models/{HOSTILE}/activations", files={"image": ("a.png", picture())})
    yield client.get(f"/api/v1/models/{HOSTILE}")
    yield client.get("/" + HOSTILE)
    yield client.get("/static/" + HOSTILE)
    yield client.get("/api/v1/models", params={HOSTILE: HOSTILE})
    yield client.post(base, content=picture(), headers={"content-type": "image/png", "X-API-Key": HOSTILE})


def test_hostile_strings_are_never_reflected(open_client: TestClient) -> None:
    responses = list(hostile_requests(open_client))
    assert any(r.status_code == 422 for r in responses)  # the requests did reach the checks
    for response in responses:
        body = response.text
        assert "<script" not in body.lower() and "alert(" not in body, (response.request.url, body)
        assert "Traceback" not in body and 'File "' not in body
        if response.status_code >= 400:
            assert response.headers["content-type"] == "application/problem+json"


def test_a_good_picture_with_hostile_exif_still_works(open_client: TestClient) -> None:
    data = jpeg_with_hostile_exif(truncate=False)
    response = open_client.post(ACTIVATIONS, content=data, headers={"content-type": "image/jpeg"})
    assert response.status_code == 200
    assert "<script" not in response.text

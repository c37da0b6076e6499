"""Which pictures are decoded, which are refused, and how: formats, bombs, corrupt input.

Every refusal must be a 4xx problem with a clear message, never a 500 (the TestClient
re-raises server errors, so a 500 fails the test loudly).
"""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from functools import cache

import httpx
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from app.errors import ProblemError
from app.imaging import decode_image
from tests.app.conftest import ACTIVATIONS, make_settings
from tests.conftest import encode, scene

ACCEPTED = "JPEG, PNG, WebP, GIF or BMP"
MAX_PIXELS = 16_777_216


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    from app.main import create_app

    with TestClient(create_app(make_settings())) as c:
        yield c


def post_file(
    client: TestClient, data: bytes, filename: str = "picture.png", ctype: str = "image/png"
) -> httpx.Response:
    return client.post(ACTIVATIONS, files={"image": (filename, data, ctype)})


# --- accepted formats -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "mode"),
    [("JPEG", "RGB"), ("PNG", "RGBA"), ("WEBP", "RGB"), ("GIF", "P"), ("BMP", "RGB")],
)
def test_accepted_formats_decode(client: TestClient, fmt: str, mode: str) -> None:
    data = encode(scene(64, 48).convert(mode), fmt)
    response = client.post(ACTIVATIONS, files={"image": ("p", data, "application/octet-stream")})
    assert response.status_code == 200, response.text
    assert response.json()["input"] == {**response.json()["input"], "width": 64, "height": 48}


def test_gif_first_frame_only() -> None:
    red = Image.new("RGB", (20, 20), (255, 0, 0))
    blue = Image.new("RGB", (20, 20), (0, 0, 255))
    buffer = io.BytesIO()
    red.save(buffer, "GIF", save_all=True, append_images=[blue], duration=100, loop=0)
    image = decode_image(buffer.getvalue(), MAX_PIXELS)
    assert image.getpixel((10, 10)) == (255, 0, 0)


# --- refused formats --------------------------------------------------------------------------


def heic_header() -> bytes:
    # An ISO-BMFF 'ftyp' box with the HEIC brand, as an iPhone photo starts, then junk.
    return struct.pack(">I", 24) + b"ftypheic" + b"\0\0\0\0" + b"mif1heic" + b"\0" * 200


FOREIGN = {
    "tiff": (encode(scene(32, 32), "TIFF"), "image/tiff"),
    "svg": (b'<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"><rect width="9" height="9"/></svg>',
            "image/svg+xml"),
    "pdf": (encode(scene(32, 32), "PDF"), "application/pdf"),
    "heic": (heic_header(), "image/heic"),
    "ico": (encode(scene(32, 32), "ICO"), "image/x-icon"),
    "text": (b"this is a note, not a picture\n", "text/plain"),
}


@pytest.mark.parametrize("kind", sorted(FOREIGN))
def test_foreign_formats_are_415_naming_the_accepted(client: TestClient, kind: str) -> None:
    data, ctype = FOREIGN[kind]
    # Whatever the client claims (a .png name, an image/png type), the bytes decide.
    for response in (
        post_file(client, data, "looks-like.png", "image/png"),
        client.post(ACTIVATIONS, content=data, headers={"content-type": ctype}),
    ):
        assert response.status_code == 415, (kind, response.text)
        problem = response.json()
        assert ACCEPTED in problem["detail"]
        assert response.headers["content-type"] == "application/problem+json"


def test_decoder_itself_refuses_tiff() -> None:
    with pytest.raises(ProblemError) as info:
        decode_image(FOREIGN["tiff"][0], MAX_PIXELS)
    assert info.value.status == 415


# --- bombs and giants -------------------------------------------------------------------------


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


@cache
def giant_png(side: int = 30_000) -> bytes:
    """A real, complete 30000x30000 4-bit grey PNG of zeros: ~440 KB that inflate to 450 MB."""
    row = b"\0" * (1 + side // 2)  # filter byte + packed pixels
    compressor = zlib.compressobj(9)
    block = row * 500
    idat = b"".join(compressor.compress(block) for _ in range(side // 500)) + compressor.flush()
    header = struct.pack(">IIBBBBB", side, side, 4, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def test_giant_png_is_refused_from_its_header_fast(client: TestClient) -> None:
    data = giant_png()
    assert 200_000 < len(data) < 1_000_000
    started = time.perf_counter()
    with pytest.raises(ProblemError) as info:
        decode_image(data, MAX_PIXELS)
    decode_s = time.perf_counter() - started
    assert info.value.status == 413
    started = time.perf_counter()
    response = client.post(ACTIVATIONS, content=data, headers={"content-type": "image/png"})
    http_s = time.perf_counter() - started
    assert response.status_code == 413
    assert response.json()["type"].endswith("image-too-large")
    assert decode_s < 0.1 and http_s < 0.1, (decode_s, http_s)


def test_pixel_cap_is_configurable(client: TestClient) -> None:
    data = encode(scene(64, 64), "PNG")
    with pytest.raises(ProblemError) as info:
        decode_image(data, max_pixels=64 * 64 - 1)
    assert info.value.status == 413
    assert decode_image(data, max_pixels=64 * 64).size == (64, 64)
    from app.main import create_app

    with TestClient(create_app(make_settings(max_pixels=1000))) as small:
        assert post_file(small, data).status_code == 413


def test_pillow_bomb_warning_is_an_error_outside_pytest() -> None:
    """In a plain interpreter (no pytest warning filters), Pillow's own guard still refuses."""
    code = (
        "import io, warnings\n"
        "from PIL import Image\n"
        "import app.imaging\n"
        "buf = io.BytesIO(); Image.new('L', (100, 100)).save(buf, 'PNG')\n"
        "Image.MAX_IMAGE_PIXELS = 5000\n"
        "try:\n"
        "    Image.open(io.BytesIO(buf.getvalue()))\n"
        "except Image.DecompressionBombWarning:\n"
        "    print('refused')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "refused", out.stderr


# --- corrupt input ----------------------------------------------------------------------------


def with_exif(data: bytes) -> bytes:
    """A JPEG with an APP1 'Exif' segment full of garbage, right after SOI."""
    garbage = b"Exif\0\0" + b"MM\0\x2a\0\0\0\x08" + b"\xff\x00\xde\xad" * 40
    return data[:2] + b"\xff\xe1" + struct.pack(">H", len(garbage) + 2) + garbage + data[2:]


JPEG = encode(scene(64, 48), "JPEG")
PNG = encode(scene(64, 48), "PNG")


@pytest.mark.parametrize(
    ("name", "data", "status"),
    [
        ("truncated-png", PNG[: len(PNG) // 2], 400),
        ("truncated-jpeg", JPEG[: len(JPEG) // 2], 400),
        ("png-header-only", PNG[:40], 400),
        ("jpeg-soi-only", b"\xff\xd8\xff", 400),
        ("zero-bytes", b"", 400),
        ("malformed-exif", with_exif(JPEG), 200),  # bad metadata must not sink a good picture
        ("bad-icc-jpeg", encode(scene(64, 48), "JPEG", icc_profile=b"not a profile" * 10), 200),
        ("bad-icc-png", encode(scene(64, 48), "PNG", icc_profile=b"not a profile" * 10), 200),
    ],
)
def test_corrupt_input_is_a_clear_4xx(client: TestClient, name: str, data: bytes, status: int) -> None:
    for response in (
        post_file(client, data),
        client.post(ACTIVATIONS, content=data, headers={"content-type": "image/jpeg"}),
    ):
        assert response.status_code == status, (name, response.text)
        if status != 200:
            detail = response.json()["detail"]
            assert detail and ("corrupt" in detail or "empty" in detail), detail


@pytest.mark.parametrize(
    ("body", "ctype", "status", "words"),
    [
        (b"--b\r\nContent-Disposition: form-data; name=\"photo\"\r\n\r\nxx\r\n--b--\r\n",
         "multipart/form-data; boundary=b", 422, "field named 'image'"),
        (b"--b\r\nContent-Disposition: form-data; name=\"image\"\r\n\r\n\r\n--b--\r\n",
         "multipart/form-data; boundary=b", 400, "empty"),
        (b"whatever", "multipart/form-data", 400, "boundary"),
        (b"--b\r\ngarbage without headers end", "multipart/form-data; boundary=b", 400, "malformed"),
    ],
    ids=["wrong-field", "empty-field", "no-boundary", "malformed"],
)
def test_bad_multipart_is_a_clear_4xx(
    client: TestClient, body: bytes, ctype: str, status: int, words: str
) -> None:
    response = client.post(ACTIVATIONS, content=body, headers={"content-type": ctype})
    assert response.status_code == status, response.text
    assert words in response.json()["detail"]

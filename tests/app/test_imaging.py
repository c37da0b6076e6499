"""Every image mode becomes correct RGB; EXIF orientation is applied; bad input is a 4xx."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from app.errors import ProblemError
from app.imaging import decode_image
from tests.conftest import encode

CAP = 16_777_216


def rgb_of(data: bytes) -> np.ndarray:
    image = decode_image(data, CAP)
    assert image.mode == "RGB"
    return np.asarray(image)


def test_grey_modes() -> None:
    assert rgb_of(encode(Image.new("L", (4, 3), 77)))[0, 0].tolist() == [77, 77, 77]
    assert rgb_of(encode(Image.new("1", (4, 3), 1)))[0, 0].tolist() == [255, 255, 255]


def test_sixteen_bit_grey_is_scaled_not_clipped() -> None:
    values = np.array([[0, 257 * 100, 65535]], dtype=np.uint16)
    data = encode(Image.fromarray(values))  # a 16-bit greyscale PNG
    assert Image.open(io.BytesIO(data)).mode.startswith("I")
    assert rgb_of(data)[0, :, 0].tolist() == [0, 100, 255]


def test_transparency_is_composited_on_white() -> None:
    rgba = Image.new("RGBA", (2, 1), (0, 0, 0, 0))
    rgba.putpixel((1, 0), (200, 0, 0, 255))
    assert rgb_of(encode(rgba)).tolist() == [[[255, 255, 255], [200, 0, 0]]]
    half = Image.new("LA", (1, 1), (0, 128))
    assert rgb_of(encode(half))[0, 0].tolist() == [127, 127, 127]


def test_palette_with_transparency() -> None:
    p = Image.new("P", (2, 1), 0)
    p.putpalette([10, 20, 30, 40, 50, 60] + [0] * 762)
    p.putpixel((1, 0), 1)
    p.info["transparency"] = 0
    data = encode(p, "PNG", transparency=0)
    assert rgb_of(data).tolist() == [[[255, 255, 255], [40, 50, 60]]]


def test_cmyk_jpeg() -> None:
    cmyk = Image.new("CMYK", (8, 8), (0, 255, 255, 0))  # pure red in CMYK
    r, g, b = rgb_of(encode(cmyk, "JPEG", quality=100))[4, 4].tolist()
    assert r > 240 and g < 15 and b < 15


@pytest.mark.parametrize(
    ("orientation", "expected_size", "marked_corner"),
    [(1, (3, 2), (0, 0)), (3, (3, 2), (1, 2)), (6, (2, 3), (0, 1)), (8, (2, 3), (2, 0))],
)
def test_exif_orientation(orientation: int, expected_size: tuple[int, int], marked_corner: tuple[int, int]) -> None:
    image = Image.new("RGB", (3, 2), (0, 0, 0))
    image.putpixel((0, 0), (255, 255, 255))  # mark the stored top-left pixel
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = encode(image, "JPEG", exif=exif.tobytes(), quality=100, subsampling=0)
    out = decode_image(data, CAP)
    assert out.size == expected_size
    pixels = np.asarray(out).sum(axis=2)
    assert np.unravel_index(np.argmax(pixels), pixels.shape) == marked_corner


def test_gif_first_frame() -> None:
    frames = [Image.new("RGB", (4, 4), c) for c in ((255, 0, 0), (0, 0, 255))]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:])
    assert rgb_of(buffer.getvalue())[0, 0].tolist() == [255, 0, 0]


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "GIF", "BMP"])
@pytest.mark.parametrize("size", [(1, 1), (4000, 10), (10, 4000)])
def test_formats_and_odd_sizes(fmt: str, size: tuple[int, int]) -> None:
    assert decode_image(encode(Image.new("RGB", size, (9, 99, 199)), fmt), CAP).size == size


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"", 400),
        (b"plain text, not a picture", 415),
        (encode(Image.new("RGB", (8, 8)), "TIFF"), 415),
        (encode(Image.new("RGB", (64, 64)), "PNG")[:60], 400),  # truncated
    ],
)
def test_bad_input_is_a_clear_4xx(data: bytes, status: int) -> None:
    with pytest.raises(ProblemError) as info:
        decode_image(data, CAP)
    assert info.value.status == status


def test_pixel_cap_is_checked_before_decoding() -> None:
    with pytest.raises(ProblemError) as info:
        decode_image(encode(Image.new("L", (200, 100))), max_pixels=19_999)
    assert info.value.status == 413 and "19999" in info.value.detail

"""Bytes -> a safe, upright RGB picture, in memory only.

Only JPEG, PNG, WebP, GIF (first frame) and BMP are ever decoded, and the pixel count is
checked from the header before any pixel is decoded, so a small file that claims to be
huge costs nothing. Every Pillow mode ends as 8-bit RGB: 16-bit values are scaled (not
clipped), transparency is composited on white, EXIF orientation is applied.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable

import numpy as np
import torch
import torchvision.transforms.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError
from torchvision.transforms._presets import ImageClassification

from app.errors import ProblemError

ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP")
ACCEPTED = "JPEG, PNG, WebP, GIF or BMP"

# Our own cap is checked from the header; Pillow's guard stays on as a second line at the
# same cap (open_image sets it) and its warning is an error, answered as 413 like ours.
warnings.simplefilter("error", Image.DecompressionBombWarning)


def open_image(data: bytes, max_pixels: int) -> Image.Image:
    """Identify the format and size without decoding pixels; refuse what we do not take."""
    if not data:
        raise ProblemError(400, "empty-image", "The image is empty (0 bytes).")
    Image.MAX_IMAGE_PIXELS = max_pixels  # process-wide; every caller passes the same Settings cap
    try:
        image = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise ProblemError(
            413, "image-too-large", f"The image has too many pixels; at most {max_pixels} are accepted."
        ) from None
    except UnidentifiedImageError:
        if looks_allowed(data):
            raise ProblemError(400, "corrupt-image", "The image is corrupt: its header is unreadable.") from None
        raise ProblemError(
            415, "unsupported-media-type", f"This is not an image we can read. Send {ACCEPTED}."
        ) from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ProblemError(
            400, "corrupt-image", f"The image is corrupt: its header is unreadable ({type(exc).__name__})."
        ) from None
    width, height = image.size
    if width < 1 or height < 1:
        raise ProblemError(400, "corrupt-image", "The image has no pixels.")
    if width * height > max_pixels:
        raise ProblemError(
            413,
            "image-too-large",
            f"The image is {width}x{height} pixels; at most {max_pixels} pixels are accepted.",
        )
    return image


def looks_allowed(data: bytes) -> bool:
    """Whether the bytes start like one of the accepted formats (to tell corrupt from foreign)."""
    return (
        data.startswith((b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"BM"))
        or (data[:4] == b"RIFF" and data[8:12] == b"WEBP")
    )


def decode_image(data: bytes, max_pixels: int) -> Image.Image:
    """Decode ``data`` into an upright 8-bit RGB image, or raise a ProblemError (4xx)."""
    # The same answer whatever the process's warning filters (pytest makes warnings errors):
    # Pillow's complaints about bad metadata (corrupt EXIF, odd MPO) are not the client's
    # problem when the pixels decode; its bomb warning always is.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        return _decode(data, max_pixels)


def _decode(data: bytes, max_pixels: int) -> Image.Image:
    image = open_image(data, max_pixels)
    try:
        image.seek(0)  # GIF/WebP animations: the first frame only
        image.load()
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise ProblemError(413, "image-too-large", "The image decompresses to too many pixels.") from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError) as exc:
        raise ProblemError(
            400, "corrupt-image", f"The image is corrupt or truncated ({type(exc).__name__})."
        ) from None
    return to_rgb(upright(image))


def upright(image: Image.Image) -> Image.Image:
    """Apply EXIF orientation; unreadable EXIF leaves the picture as stored (not an error)."""
    try:
        rotated = ImageOps.exif_transpose(image)
    except Exception:  # noqa: BLE001 - malformed EXIF must not sink a valid picture
        return image
    return rotated if rotated is not None else image


def to_rgb(image: Image.Image) -> Image.Image:
    """Any Pillow mode -> 8-bit RGB, scaling high bit depths and flattening transparency."""
    mode = image.mode
    if mode.startswith("I") or mode == "F":
        return _wide_to_rgb(image)
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info
    if has_alpha:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


def _wide_to_rgb(image: Image.Image) -> Image.Image:
    # 16-bit greys (I;16*, or I from a 16-bit PNG): 0..65535 maps onto 0..255 by /257,
    # so white stays white and nothing is clipped. Floats are taken as 0..255.
    values = np.asarray(image).astype(np.float64)
    if image.mode != "F":
        values = values / 257.0
    grey = np.clip(np.rint(values), 0, 255).astype(np.uint8)
    return Image.fromarray(grey, mode="L").convert("RGB")


def preprocess_image(
    preprocess: Callable[[Image.Image], torch.Tensor], image: Image.Image
) -> tuple[torch.Tensor, np.ndarray | None]:
    """The model's input for ``image``, and the 8-bit picture it was normalized from.

    For torchvision's ``ImageClassification`` preset (both our models) the steps are
    torchvision's own functions in its order (resize, centre crop, to tensor, to float,
    normalize), only the 8-bit crop is kept on the way: the tensor is bit for bit the
    preset's, and the crop is the picture the response shows, with no float round trip.
    Any other preprocessing is called as it is (no 8-bit picture then).
    """
    # The exact class only: a subclass may do more (isinstance is for the type checker).
    if not isinstance(preprocess, ImageClassification) or type(preprocess) is not ImageClassification:
        return preprocess(image), None
    resized = F.resize(
        image, preprocess.resize_size, interpolation=preprocess.interpolation, antialias=preprocess.antialias
    )
    cropped = F.center_crop(resized, preprocess.crop_size)
    assert isinstance(cropped, Image.Image)
    seen = np.array(cropped, dtype=np.uint8)  # [H, W, 3]
    pixels = torch.from_numpy(seen).permute(2, 0, 1)  # what F.pil_to_tensor gives
    tensor = F.normalize(F.convert_image_dtype(pixels, torch.float), mean=preprocess.mean, std=preprocess.std)
    return tensor, seen

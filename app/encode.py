"""Float activations -> what travels: quantized PNG atlases, statistics, npz.

Each channel is quantized linearly between its own ``lo`` and ``hi``:
``value = lo + q / 255 * (hi - lo)``, so a client recovers every value within
``(hi - lo) / 510``. Channel ``c`` is tile ``c`` of the atlas, row-major, ``columns``
tiles per row; where the atlas lists the ``channels`` it holds (a wide layer's most active
maps), tile ``i`` is channel ``channels[i]``. The maths is done in float64 against exactly the ``lo``/``hi`` we send.
"""

from __future__ import annotations

import base64
import io
import json
import math
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

# zlib-ng: zlib's API and stream format with faster deflate. On AlexNet's five atlases its
# run-length deflate takes 1.9 ms where zlib's takes 2.8, for the same number of bytes, and
# its Huffman-only pass over the 224 px picture 0.4 ms where zlib's takes 0.8.
from zlib_ng import zlib_ng as zlib

# zlib level 1: several times faster than the default and only slightly larger here.
PNG_COMPRESS_LEVEL = 1
# PNG colour type by channel count (grey, RGB, RGBA) for the fast 8-bit writer below.
_COLOUR_TYPES = {1: 0, 3: 2, 4: 6}
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class Quantized:
    q: np.ndarray  # uint8 [C, H, W]
    lo: np.ndarray  # float64 [C], exactly representable in float32
    hi: np.ndarray


def as_maps(array: np.ndarray) -> np.ndarray:
    """Any layer output for one image -> [C, H, W] (a vector becomes C maps of 1x1)."""
    if array.ndim == 3:
        return array
    if array.ndim == 1:
        return array.reshape(-1, 1, 1)
    raise ValueError(f"cannot draw an output of shape {list(array.shape)}")


def quantize(maps: np.ndarray, lo: np.ndarray | None = None, hi: np.ndarray | None = None) -> Quantized:
    """8-bit maps between each channel's ``lo`` and ``hi`` (float64; default: its own min and max)."""
    channels = maps.shape[0]
    flat = maps.reshape(channels, -1)
    lo = flat.min(axis=1).astype(np.float64) if lo is None else lo
    hi = flat.max(axis=1).astype(np.float64) if hi is None else hi
    span = hi - lo
    scale = np.divide(255.0, span, out=np.zeros_like(span), where=span > 0)
    # The same float64 arithmetic as ``rint((flat - lo) * scale)``, in one buffer.
    q = np.subtract(flat, lo[:, None], dtype=np.float64)
    q *= scale[:, None]
    np.rint(q, out=q)
    np.clip(q, 0, 255, out=q)
    return Quantized(q.astype(np.uint8).reshape(maps.shape), lo, hi)


def atlas_columns(channels: int) -> int:
    return max(1, math.ceil(math.sqrt(channels)))


def tile_atlas(q: np.ndarray, columns: int) -> np.ndarray:
    """[C, H, W] -> one [rows*H, columns*W] image, channel c at tile c (row-major)."""
    channels, height, width = q.shape
    rows = math.ceil(channels / columns)
    padded = np.zeros((rows * columns, height, width), dtype=q.dtype)
    padded[:channels] = q
    return padded.reshape(rows, columns, height, width).transpose(0, 2, 1, 3).reshape(
        rows * height, columns * width
    )


def png_bytes(pixels: np.ndarray) -> bytes:
    """8-bit grey/RGB/RGBA pixels -> PNG, written directly (anything else goes through Pillow).

    Why not Pillow: its encoder tries every PNG filter on every row (adaptive filtering),
    which was three quarters of the encoding time and, on activation atlases, compresses
    *worse* than no filter at all. Measured on AlexNet's five default layers (bench/):
    Pillow level 1 ~30 ms / 315 KB, this writer ~6 ms / 272 KB. Grey atlases are mostly
    runs of zeros (ReLU) and equal values, so no filter + zlib's run-length strategy wins.
    Pictures (RGB/RGBA) are smooth: the Average filter leaves small residuals, and Huffman
    coding alone (no LZ77 match search) packs them at half the time of deflate level 1
    for ~4 % more bytes (AlexNet's 224 px input: 0.8 ms / 87 KB against 1.5 ms / 83 KB).
    """
    colour_type = _COLOUR_TYPES.get(1 if pixels.ndim == 2 else pixels.shape[-1]) if pixels.ndim in (2, 3) else None
    if pixels.dtype != np.uint8 or colour_type is None or pixels.size == 0:
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
        return buffer.getvalue()
    height, width = pixels.shape[:2]
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    rows = np.ascontiguousarray(pixels).reshape(height, width * channels)
    # Each scanline is one filter-type byte then the (filtered) row.
    raw = np.empty((height, width * channels + 1), dtype=np.uint8)
    if channels == 1:
        raw[:, 0] = 0  # filter None
        raw[:, 1:] = rows
        strategy = zlib.Z_RLE
    else:
        raw[:, 0] = 3  # filter Average: each byte minus the mean of its left and upper neighbours
        _average_filter(rows, channels, raw[:, 1:])
        strategy = zlib.Z_HUFFMAN_ONLY
    compressor = zlib.compressobj(PNG_COMPRESS_LEVEL, zlib.DEFLATED, 15, 9, strategy)
    idat = compressor.compress(raw.data) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    return b"".join((_PNG_SIGNATURE, _chunk(b"IHDR", header), _chunk(b"IDAT", idat), _chunk(b"IEND", b"")))


def _average_filter(rows: np.ndarray, channels: int, out: np.ndarray) -> None:
    """PNG filter type 3 (Average), for all rows at once: ``x - floor((left + up) / 2)`` mod 256,
    with ``left`` the same channel one pixel to the left and ``up`` the row above (0 off the edge)."""
    wide = rows.astype(np.int16)
    mean = np.zeros_like(wide)
    mean[:, channels:] = wide[:, :-channels]
    mean[1:] += wide[:-1]
    mean >>= 1
    np.subtract(wide, mean, out=wide)
    out[...] = wide.astype(np.uint8)  # wraps modulo 256, as the filter is defined


def _chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(data, zlib.crc32(tag)))


def data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _json_numbers(values: np.ndarray, digits: int) -> str:
    """``values`` as a JSON array of numbers rounded to ``digits`` significant digits (``%g``).

    Written as text in one %-format rather than rounded to floats for json.dumps to print
    again: ~4x faster (AlexNet's 1,344 channels x 3 statistics: 1.2 -> 0.3 ms). ``%g`` of a
    finite float is a valid JSON number, and activations are finite: 8-bit pictures through
    finite weights.
    """
    items = values.tolist()
    return "[" + (f"%.{digits}g," * len(items))[:-1] % tuple(items) + "]"


def most_active(mean: np.ndarray, hi: np.ndarray, count: int) -> np.ndarray:
    """The ``count`` channels with the highest mean (ties: the higher maximum, then the lower
    index), strongest first: the order in which the page ranks a layer's maps."""
    return np.lexsort((np.arange(mean.size), -hi, -mean))[:count]


def layer_json(maps: np.ndarray, info: dict[str, Any], keep: int | None = None) -> str:
    """One layer's compact JSON text: its description (``info``), shape, quantization bounds,
    atlas and per-channel statistics (mean, max, share of positive values), made where the
    layer is encoded, so a pool can make several at once.

    With ``keep`` below the layer's channel count, the atlas holds only the ``keep`` most
    active maps (``atlas.channels`` names them, tile by tile) while the bounds and statistics
    still cover every channel: a wide layer's answer stays small, and its other maps are one
    request for the layer by name away.
    """
    maps = as_maps(maps)
    channels = maps.shape[0]
    flat = maps.reshape(channels, -1)
    mean = flat.mean(axis=1)
    chosen: np.ndarray | None = None
    if keep is not None and keep < channels:
        lo, hi = flat.min(axis=1).astype(np.float64), flat.max(axis=1).astype(np.float64)
        chosen = most_active(mean, hi, keep)
        quantized = quantize(maps[chosen], lo[chosen], hi[chosen])
        lo_all, hi_all = lo, hi
    else:
        quantized = quantize(maps)
        lo_all, hi_all = quantized.lo, quantized.hi
    columns = atlas_columns(quantized.q.shape[0])
    png = base64.b64encode(png_bytes(tile_atlas(quantized.q, columns))).decode("ascii")
    # count / size: the same float64 as the mean of the booleans, without making them floats
    active = np.count_nonzero(flat > 0, axis=1) / flat.shape[1]
    statistics = (
        f'{{"mean":{_json_numbers(mean, 5)},"max":{_json_numbers(hi_all, 5)},'
        f'"active":{_json_numbers(active, 4)}}}'
    )
    atlas: dict[str, Any] = {"png": raw_marker(0), "columns": columns, "tile": [int(maps.shape[1]), int(maps.shape[2])]}
    if chosen is not None:
        atlas["channels"] = chosen.tolist()
    layer = {
        **info,
        "shape": list(maps.shape),
        "lo": lo_all.tolist(),  # in full: the client decodes the atlas with exactly these
        "hi": hi_all.tolist(),
        "atlas": atlas,
        "channels": raw_marker(1),
    }
    return compact_json(layer, [f'"{png}"', statistics])


# ``raw_marker(i)`` stands in a document for ``raw[i]`` (see compact_json). json.dumps writes
# the NUL characters as \u0000, which nothing else in our responses contains.
_MARK_OPEN, _MARK_CLOSE = '"\\u0000', '\\u0000"'


def raw_marker(index: int) -> str:
    return f"\x00{index}\x00"


def compact_json(document: Any, raw: list[str]) -> str:
    """``json.dumps(document)`` without spaces, where the string ``raw_marker(i)`` becomes the
    JSON text ``raw[i]``, inserted as it is.

    For text that is JSON already: a layer made by ``layer_json``, or a quoted base64 string
    (which needs no escaping). json.dumps would copy base64 character by character looking
    for characters to escape (~0.5 ms for AlexNet's 450 KB of atlases); this copies it once.
    """
    pieces = json.dumps(document, separators=(",", ":")).split(_MARK_OPEN)
    if len(pieces) - 1 != len(raw):
        raise ValueError(f"{len(raw)} raw pieces for {len(pieces) - 1} markers")
    out = [pieces[0]]
    for piece in pieces[1:]:
        index, rest = piece.split(_MARK_CLOSE, 1)
        out += (raw[int(index)], rest)
    return "".join(out)


def denormalized_png(tensor: np.ndarray, mean: tuple[float, ...], std: tuple[float, ...]) -> bytes:
    """The network's input [3, H, W] back in 0..255 RGB: exactly what it saw."""
    rgb = tensor * np.asarray(std).reshape(3, 1, 1) + np.asarray(mean).reshape(3, 1, 1)
    pixels = np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8).transpose(1, 2, 0)
    return png_bytes(np.ascontiguousarray(pixels))


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **{k: v.astype(np.float32) for k, v in arrays.items()})  # type: ignore[arg-type]
    return buffer.getvalue()

"""Quantization and atlas layout, checked against numbers worked out by hand; the JSON and PNG writers."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
from PIL import Image

from app.encode import (
    as_maps,
    atlas_columns,
    compact_json,
    layer_json,
    png_bytes,
    quantize,
    raw_marker,
    tile_atlas,
)


def test_quantize_exact_small_case() -> None:
    maps = np.array([[[0.0, 1.0], [2.0, 4.0]], [[3.0, 3.0], [3.0, 3.0]]], dtype=np.float32)
    result = quantize(maps)
    assert result.lo.tolist() == [0.0, 3.0] and result.hi.tolist() == [4.0, 3.0]
    # 255 * v / 4, rounded: 0, 63.75 -> 64, 127.5 -> 128 (round half to even), 255
    assert result.q[0].tolist() == [[0, 64], [128, 255]]
    assert result.q[1].tolist() == [[0, 0], [0, 0]]  # a flat channel decodes exactly to lo


def test_quantize_error_bound_on_random_maps() -> None:
    rng = np.random.default_rng(0)
    maps = (rng.standard_normal((37, 9, 11)) * rng.uniform(0.01, 100, (37, 1, 1))).astype(np.float32)
    result = quantize(maps)
    decoded = result.lo[:, None, None] + result.q / 255.0 * (result.hi - result.lo)[:, None, None]
    bound = ((result.hi - result.lo) / 510.0)[:, None, None]
    assert np.all(np.abs(decoded - maps) <= bound * (1 + 1e-9))


def test_atlas_places_channel_c_at_tile_c_row_major() -> None:
    channels, h, w = 5, 2, 3
    q = np.stack([np.full((h, w), c + 1, dtype=np.uint8) for c in range(channels)])
    columns = atlas_columns(channels)
    assert columns == 3
    atlas = tile_atlas(q, columns)
    assert atlas.shape == (2 * h, 3 * w)
    for c in range(channels):
        row, col = divmod(c, columns)
        assert np.all(atlas[row * h : (row + 1) * h, col * w : (col + 1) * w] == c + 1)
    assert np.all(atlas[h:, 2 * w :] == 0)  # the unused sixth tile stays empty


def test_vectors_become_one_by_one_maps() -> None:
    assert as_maps(np.arange(4, dtype=np.float32)).shape == (4, 1, 1)


def test_layer_json_carries_the_maps_bounds_atlas_and_statistics() -> None:
    rng = np.random.default_rng(1)
    maps = np.maximum(rng.standard_normal((20, 7, 9)) * 300, 0).astype(np.float32)
    maps[3] = 0.0  # a dead channel: mean, max and active all 0
    info = {"name": "features.1", "title": "conv1"}
    text = layer_json(maps, info)
    layer = json.loads(text)
    assert " " not in text  # compact
    assert layer["name"] == "features.1" and layer["title"] == "conv1" and layer["shape"] == [20, 7, 9]
    flat = maps.reshape(20, -1).astype(np.float64)
    assert layer["lo"] == flat.min(1).tolist() and layer["hi"] == flat.max(1).tolist()  # exactly
    assert layer["atlas"]["columns"] == 5 and layer["atlas"]["tile"] == [7, 9]
    atlas = np.asarray(Image.open(io.BytesIO(base64.b64decode(layer["atlas"]["png"]))))
    for c in range(20):
        row, col = divmod(c, 5)
        decoded = flat[c].min() + atlas[row * 7 : row * 7 + 7, col * 9 : col * 9 + 9] / 255 * np.ptp(flat[c])
        assert np.all(np.abs(decoded - maps[c]) <= np.ptp(flat[c]) / 510 * (1 + 1e-9))
    # Statistics rounded to 5 (active: 4) significant digits, as Python's own formatting rounds them.
    stats = layer["channels"]
    assert stats["mean"] == [float(f"{v:.5g}") for v in flat.mean(1)]
    assert stats["max"] == [float(f"{v:.5g}") for v in flat.max(1)]
    assert stats["active"] == [float(f"{v:.4g}") for v in (flat > 0).mean(1)]
    assert stats["mean"][3] == stats["max"][3] == stats["active"][3] == 0


def test_a_trimmed_layer_carries_its_most_active_maps_and_every_channels_statistics() -> None:
    # Four 2x2 maps with means 1, 4, 3 and 4 (channels 1 and 3 tie: the higher maximum, 3, first).
    maps = np.array([
        [[1, 1], [1, 1]], [[4, 4], [4, 4]], [[0, 2], [4, 6]], [[0, 0], [8, 8]],
    ], dtype=np.float32)
    layer = json.loads(layer_json(maps, {"name": "wide"}, keep=3))
    assert layer["atlas"]["channels"] == [3, 1, 2] and layer["atlas"]["columns"] == 2
    assert layer["shape"] == [4, 2, 2] and layer["atlas"]["tile"] == [2, 2]
    assert layer["lo"] == [1, 4, 0, 0] and layer["hi"] == [1, 4, 6, 8]  # every channel's bounds
    assert layer["channels"]["mean"] == [1, 4, 3, 4] and layer["channels"]["active"] == [1, 1, 0.75, 0.5]
    atlas = np.asarray(Image.open(io.BytesIO(base64.b64decode(layer["atlas"]["png"]))))
    # Tile i is channel channels[i]: 3 (0..8), then 1 (constant: 0), then 2 (0..6), padding last.
    assert atlas.tolist() == [[0, 0, 0, 0], [255, 255, 0, 0], [0, 85, 0, 0], [170, 255, 0, 0]]
    # Asked to keep as many as there are (or none said), the layer comes whole, with no list.
    whole = json.loads(layer_json(maps, {"name": "wide"}, keep=4))
    assert "channels" not in whole["atlas"] and whole == json.loads(layer_json(maps, {"name": "wide"}))


def test_compact_json_splices_raw_text_where_the_markers_stand() -> None:
    document = {"a": raw_marker(0), "b": [1, raw_marker(1)], "c": "x"}
    assert compact_json(document, ['"QUJD"', '{"k":[1,2]}']) == '{"a":"QUJD","b":[1,{"k":[1,2]}],"c":"x"}'
    with pytest.raises(ValueError):
        compact_json(document, ['"only one"'])


@pytest.mark.parametrize("shape", [(1, 1, 3), (5, 1, 3), (1, 7, 4), (33, 17, 3), (64, 64, 4)])
def test_picture_pngs_are_lossless(shape: tuple[int, int, int]) -> None:
    rng = np.random.default_rng(sum(shape))
    noise = rng.integers(0, 256, shape, dtype=np.uint8)
    smooth = np.cumsum(noise, axis=1, dtype=np.uint8)  # wraps: large jumps for the filter too
    for pixels in (noise, smooth, np.zeros(shape, np.uint8), np.full(shape, 255, np.uint8)):
        decoded = np.asarray(Image.open(io.BytesIO(png_bytes(pixels))))
        assert np.array_equal(decoded, pixels)

"""Quantization and atlas layout, checked against numbers worked out by hand."""

from __future__ import annotations

import numpy as np

from app.encode import as_maps, atlas_columns, quantize, tile_atlas


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

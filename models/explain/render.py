"""Display policies, kept apart from the methods: colour maps, signed images, atlases.

Everything here turns float arrays into uint8 pixels; nothing computes an explanation.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

# Anchor colours of a perceptually ordered dark-to-bright map (close to matplotlib's
# "inferno"), interpolated linearly: low evidence is dark purple, high is pale yellow.
_INFERNO = np.array(
    [
        [0, 0, 4], [40, 11, 84], [101, 21, 110], [159, 42, 99],
        [212, 72, 66], [245, 125, 21], [250, 193, 39], [252, 255, 164],
    ],
    dtype=np.float64,
)


def colormap(values: np.ndarray) -> np.ndarray:
    """Values in [0, 1] (any shape) -> uint8 RGB with one more trailing axis."""
    v = np.clip(np.nan_to_num(values), 0.0, 1.0) * (len(_INFERNO) - 1)
    low = np.floor(v).astype(int).clip(0, len(_INFERNO) - 2)
    t = (v - low)[..., None]
    rgb = _INFERNO[low] * (1 - t) + _INFERNO[low + 1] * t
    return np.rint(rgb).astype(np.uint8)


def resize_map(values: np.ndarray, height: int, width: int) -> np.ndarray:
    """A [h, w] map bilinearly resized to [height, width] (align_corners False, like the net)."""
    tensor = torch.from_numpy(np.ascontiguousarray(values, dtype=np.float32))[None, None]
    return F.interpolate(tensor, size=(height, width), mode="bilinear", align_corners=False)[0, 0].numpy()


def heatmap_rgba(values: np.ndarray, height: int, width: int, max_alpha: float = 0.75) -> np.ndarray:
    """A [0, 1] map as an RGBA overlay at the input's size: colour and opacity grow with value."""
    big = np.clip(resize_map(values, height, width), 0.0, 1.0)
    alpha = np.rint(big * max_alpha * 255).astype(np.uint8)
    return np.ascontiguousarray(np.concatenate([colormap(big), alpha[..., None]], axis=-1))


def signed_image(gradient: np.ndarray, spread: float = 3.0) -> np.ndarray:
    """A signed [3, H, W] array as RGB around mid-grey: zero stays exactly grey (128).

    Scaled by ``spread`` standard deviations of the non-zero values, the usual display
    of guided-backpropagation images (the few largest values saturate, the rest show).
    """
    nonzero = gradient[gradient != 0]
    scale = spread * float(nonzero.std()) if nonzero.size else 0.0
    scaled = gradient / scale if scale > 0 else np.zeros_like(gradient)
    pixels = np.rint(128 + 127 * np.clip(scaled, -1, 1)).astype(np.uint8)
    return np.ascontiguousarray(pixels.transpose(1, 2, 0))


def symmetric_unit(weights: np.ndarray) -> np.ndarray:
    """Each kernel mapped to [0, 1] symmetrically around 0: 0 -> 0.5, the largest |w| -> 0 or 1."""
    flat = np.abs(weights.reshape(weights.shape[0], -1)).max(axis=1)
    scale = np.where(flat > 0, flat, 1.0).reshape(-1, *([1] * (weights.ndim - 1)))
    result: np.ndarray = 0.5 + 0.5 * weights / scale
    return result


def atlas(tiles: np.ndarray, columns: int | None = None) -> tuple[np.ndarray, int]:
    """[N, h, w, (c)] tiles -> one image, tile i at row i // columns, column i % columns."""
    count = tiles.shape[0]
    columns = columns or max(1, math.ceil(math.sqrt(count)))
    rows = math.ceil(count / columns)
    padded = np.zeros((rows * columns, *tiles.shape[1:]), dtype=tiles.dtype)
    padded[:count] = tiles
    h, w = tiles.shape[1:3]
    grid = padded.reshape(rows, columns, h, w, *tiles.shape[3:]).swapaxes(1, 2)
    return np.ascontiguousarray(grid.reshape(rows * h, columns * w, *tiles.shape[3:])), columns


def untile(image: np.ndarray, tile: tuple[int, int], columns: int, index: int) -> np.ndarray:
    """Tile ``index`` of an atlas made by :func:`atlas`."""
    h, w = tile
    row, col = divmod(index, columns)
    return image[row * h : (row + 1) * h, col * w : (col + 1) * w]

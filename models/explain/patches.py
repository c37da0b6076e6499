"""The image patches that excite a unit most (Zeiler & Fergus, 2014): top-k over a dataset.

For every image, each unit's strongest position is kept; the k images with the largest of
those give the patches: the unit's receptive field around that position (geometry from
models.geometry: centre = offset + index * stride), padded with grey where it leaves the
picture, resized to one tile size. One patch per image, so the top k are k pictures.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torch import nn

from models.capture import capture
from models.geometry import Geometry
from models.preprocess import normalize


@dataclass(frozen=True)
class TopPatches:
    patches: np.ndarray  # uint8 [units, k, tile, tile, 3]
    values: np.ndarray  # float32 [units, k]: the activation at each patch's centre
    images: np.ndarray  # int64 [units, k]: which image each patch came from
    best: np.ndarray  # float32 [N, units]: each image's strongest activation of each unit


def strongest(
    network: nn.Module, layer: str, images: np.ndarray, mean: Sequence[float], std: Sequence[float],
    batch: int = 64,
) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """Per image and unit, the largest activation and its flat map position; and the map size."""
    values, where = [], []
    size = (0, 0)
    for start in range(0, len(images), batch):
        x = normalize(images[start : start + batch], mean, std)
        with torch.inference_mode(), capture(network, [layer]) as outputs:
            network(x)
        out = outputs[layer]
        size = (int(out.shape[2]), int(out.shape[3]))
        best, index = out.flatten(2).max(dim=2)
        values.append(best.numpy())
        where.append(index.numpy())
    return np.concatenate(values), np.concatenate(where), size


def crop(image: np.ndarray, centre: tuple[float, float], side: int) -> np.ndarray:
    """The ``side`` x ``side`` square centred on ``centre`` (y, x), grey outside the image."""
    half = side / 2
    top, left = round(centre[0] - half + 0.5), round(centre[1] - half + 0.5)
    out = np.full((side, side, 3), 128, dtype=np.uint8)
    h, w = image.shape[:2]
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + side, h), min(left + side, w)
    if y1 > y0 and x1 > x0:
        out[y0 - top : y1 - top, x0 - left : x1 - left] = image[y0:y1, x0:x1]
    return out


def top_patches(
    network: nn.Module, layer: str, geometry: Geometry, images: np.ndarray,
    mean: Sequence[float], std: Sequence[float], k: int = 9, tile: int = 32,
) -> TopPatches:
    """The k strongest patches of every unit of ``layer`` over ``images`` (uint8 [N, S, S, 3])."""
    best, where, (_h, w) = strongest(network, layer, images, mean, std)
    order = np.argsort(-best, axis=0, kind="stable")[:k].T  # [units, k]
    units = best.shape[1]
    patches = np.empty((units, k, tile, tile, 3), dtype=np.uint8)
    for unit in range(units):
        for j, n in enumerate(order[unit]):
            row, col = divmod(int(where[n, unit]), w)
            centre = (geometry.offset + row * geometry.stride, geometry.offset + col * geometry.stride)
            square = crop(images[n], centre, geometry.receptive_field)
            patches[unit, j] = np.asarray(Image.fromarray(square).resize((tile, tile), Image.Resampling.LANCZOS))
    values = np.take_along_axis(best.T, order, axis=1).astype(np.float32)
    return TopPatches(patches, values, order.astype(np.int64), best.astype(np.float32))

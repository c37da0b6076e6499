"""First-layer kernels as pictures: the classic AlexNet figure of edges and colour blobs.

Only a convolution that reads the RGB input can be drawn this way: its kernels live in
pixel space. Each kernel is scaled symmetrically around zero (see render.symmetric_unit),
so grey means "ignores this pixel", and upscaled with nearest neighbours so it is visible.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from torch import nn

from models.explain.render import atlas, symmetric_unit


class NotDrawable(ValueError):
    """The layer is not a convolution on RGB pixels."""


@dataclass(frozen=True)
class Filters:
    atlas: np.ndarray  # uint8 [rows * h, columns * w, 3]
    columns: int
    tile: tuple[int, int]  # upscaled kernel size [h, w]
    shape: tuple[int, ...]  # the weight tensor's shape [out, in, kh, kw]
    norms: list[float]  # L2 norm of each kernel (its "strength")
    scale: int


def filter_atlas(network: nn.Module, layer: str, scale: int = 4) -> Filters:
    """The kernels of ``layer`` (a Conv2d on 3 input channels) as an RGB atlas."""
    module = dict(network.named_modules()).get(layer)
    if not isinstance(module, nn.Conv2d) or module.in_channels != 3:
        raise NotDrawable(f"{layer} is not a convolution on the RGB input")
    weights = module.weight.detach().float().cpu().numpy()  # [out, 3, kh, kw]
    images = symmetric_unit(weights).transpose(0, 2, 3, 1)  # [out, kh, kw, 3]
    pixels = np.rint(np.clip(images, 0, 1) * 255).astype(np.uint8)
    big = pixels.repeat(scale, axis=1).repeat(scale, axis=2)
    grid, columns = atlas(big)
    norms = np.sqrt((weights.reshape(weights.shape[0], -1).astype(np.float64) ** 2).sum(axis=1))
    return Filters(grid, columns, (big.shape[1], big.shape[2]), tuple(weights.shape), norms.tolist(), scale)

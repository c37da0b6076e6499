"""Receptive field and stride of every layer, derived from the network's own modules.

For a chain of convolutions and poolings, a unit's receptive field grows by
``(kernel - 1) * jump`` at each layer and the jump (stride in input pixels) multiplies by
the layer's stride. ``offset`` is the input coordinate of the centre of map pixel (0, 0),
so pixel (i, j) looks at the square centred on ``offset + (i, j) * stride``.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn


@dataclass(frozen=True)
class Geometry:
    """A layer's receptive field and stride in input pixels, and where its map pixel (0, 0) is centred."""

    receptive_field: int
    stride: int
    offset: float


def _pair(value: object) -> int:
    """A kernel, stride or padding as one number."""
    # Our networks use square kernels, so a tuple's first entry stands for both.
    if isinstance(value, int):
        return value
    assert isinstance(value, tuple)
    return int(value[0])


def sequential_geometry(features: nn.Sequential, prefix: str) -> dict[str, Geometry]:
    """Geometry after each module of a purely spatial ``nn.Sequential``."""
    rf, jump, offset = 1, 1, 0.0
    result: dict[str, Geometry] = {}
    for index, module in enumerate(features):
        if isinstance(module, nn.Conv2d | nn.MaxPool2d | nn.AvgPool2d):
            kernel = _pair(module.kernel_size)
            stride = _pair(module.stride)
            padding = _pair(module.padding)
            dilation = _pair(getattr(module, "dilation", 1))
            effective = dilation * (kernel - 1) + 1
            offset += ((effective - 1) / 2 - padding) * jump
            rf += (effective - 1) * jump
            jump *= stride
        result[f"{prefix}.{index}"] = Geometry(rf, jump, offset)
    return result

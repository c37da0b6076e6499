"""The tiny network's input: uint8 pictures scaled to [0, 1], then standardized per channel.

One definition for training, the measuring jobs and the scripts, in the order the server's
torchvision preprocessing ends with (``x / 255``, then ``(x - mean) / std``), so a network
sees the same numbers wherever its pictures come from.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from models import world

# Measured once on 2,000 parts-world pictures (world seed seeds.NORMALIZATION, 192 px) and
# fixed here so they never drift; tiny.json stores them and the server applies them too.
MEAN = [0.42, 0.418, 0.415]
STD = [0.234, 0.231, 0.232]


def standardize(x: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """Float N x 3 x H x W in [0, 1] -> ``(x - mean) / std`` per channel, on ``x``'s device."""
    m = torch.tensor(mean, device=x.device).view(1, 3, 1, 1)
    s = torch.tensor(std, device=x.device).view(1, 3, 1, 1)
    return (x - m) / s


def normalize_chw(images: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """uint8 N x 3 x H x W (any device, any strides) -> the network's normalized float input."""
    return standardize(images.float().div_(255.0), mean, std)


def normalize(images: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """uint8 N x H x W x 3 pictures -> the network's normalized N x 3 x H x W float input."""
    return normalize_chw(torch.from_numpy(images).permute(0, 3, 1, 2), mean, std)


def normalize_samples(samples: Sequence[world.Sample], meta: Mapping[str, Any]) -> torch.Tensor:
    """Generated pictures as the network's input, with the normalization a model's metadata names."""
    return normalize(np.stack([s.image for s in samples]), meta["mean"], meta["std"])

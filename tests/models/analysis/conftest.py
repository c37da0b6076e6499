"""What the analysis tests share: pictures with known concepts, and a hand-made model that finds them."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from models.analysis.concepts import Concepts


def square_pictures(n: int = 24, size: int = 32, seed: int = 0) -> tuple[torch.Tensor, Concepts]:
    """Grey noise images with a red square (concept "red") and a blue square ("blue")."""
    rng = np.random.default_rng(seed)
    images = rng.uniform(0.3, 0.6, size=(n, 3, size, size)).astype(np.float32)
    masks = np.zeros((n, 2, size, size), dtype=bool)
    for i in range(n):
        for k, colour in enumerate(([1.0, 0.0, 0.0], [0.0, 0.0, 1.0])):
            s = int(rng.integers(4, 9))
            y, x = rng.integers(0, size - s, 2)
            images[i, :, y:y + s, x:x + s] = np.array(colour, dtype=np.float32)[:, None, None]
            masks[i, k, y:y + s, x:x + s] = True
        masks[i, 0] &= ~masks[i, 1]  # blue drawn last hides red where they overlap
    return torch.from_numpy(images), Concepts(["red", "blue"], ["part", "part"], torch.from_numpy(masks))


def hand_made() -> nn.Module:
    """1x1 conv + ReLU: unit 0 fires on red (R - G - B), unit 1 on blue, unit 2 on grey."""
    conv = nn.Conv2d(3, 3, 1)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([[1.0, -1.0, -1.0], [-1.0, -1.0, 1.0], [0.3, 0.3, 0.3]]).view(3, 3, 1, 1))
        assert conv.bias is not None
        conv.bias.copy_(torch.tensor([0.0, 0.0, -0.2]))
    return nn.Sequential(conv, nn.ReLU())

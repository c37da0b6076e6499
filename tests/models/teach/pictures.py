"""Pictures to teach with: parts-world scenes of one class, and random crops of one photo."""

from __future__ import annotations

import numpy as np
import skimage.data
import torch
from PIL import Image
from torch import nn

from models import world
from models.world import seeds

SIZE = 128


def scenes(name: str, count: int, fresh: bool = False, start: int = 0) -> list[Image.Image]:
    """``count`` pictures of class ``name``: examples (seeds.TEACH) or fresh ones (seeds.TEACH_TEST)."""
    label = world.CLASSES.index(name)
    if fresh:
        drawn = [world.generate(seeds.TEACH_TEST, start + i, SIZE, label=label) for i in range(count)]
    else:
        drawn = [world.generate(seeds.TEACH, start + i, SIZE, label=label) for i in range(count)]
    return [Image.fromarray(sample.image) for sample in drawn]


def crops(photo: str, count: int, seed: int) -> list[Image.Image]:
    """``count`` square crops (30-70 % of the short side) of scikit-image's sample ``photo``."""
    pixels = getattr(skimage.data, photo)()
    rng = np.random.default_rng(seed)
    height, width = pixels.shape[:2]
    out = []
    for _ in range(count):
        side = int(rng.uniform(0.3, 0.7) * min(height, width))
        y, x = int(rng.integers(0, height - side)), int(rng.integers(0, width - side))
        out.append(Image.fromarray(np.ascontiguousarray(pixels[y : y + side, x : x + side])))
    return out


CAM = "features.11"  # tiny's last spatial layer: conv5 after its ReLU


def conv5_pooled(network: nn.Module, batch: torch.Tensor) -> torch.Tensor:
    """The independent computation: the network's first twelve modules, each map averaged."""
    features = network.get_submodule("features")
    assert isinstance(features, nn.Sequential)
    with torch.no_grad():
        return nn.Sequential(*list(features)[:12])(batch.clone()).mean(dim=(2, 3))

"""What a dissection compares units with, and how: concept masks, where each map pixel sits, and IoU.

A unit's map is upsampled to the mask resolution in line with the network's geometry
(models/geometry.py): map pixel i sits at the centre of its receptive field, ``offset + i *
stride`` input pixels, and values in between are interpolated (clamped at the border). The
map is thresholded at that unit's top quantile over all images, matched to the concept's
coverage, and IoU = |unit region AND concept| / |unit region OR concept|, summed over the
images.

The leaf of models/analysis: dissection, probes, selectivity and training build on it, and it
imports none of them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from models import world
from models.capture import capture
from models.geometry import sequential_geometry

# The tiny network's conv layers after their ReLUs, by the names people use for them.
CONV_LAYERS: dict[str, str] = {
    "conv1": "features.1", "conv2": "features.4", "conv3": "features.7",
    "conv4": "features.9", "conv5": "features.11",
}
TARGET_IOU = 0.20  # a part type "has a detector" when one unit's IoU with it reaches this
DETECTOR_IOU = 0.10  # a unit counts as a part/object detector at or above this IoU
QUANTILE_LADDER: tuple[float, ...] = (0.999, 0.995, 0.99, 0.98, 0.95, 0.9)


@dataclass(frozen=True)
class Alignment:
    """Where a map's pixels sit on the input: pixel i's centre is ``offset + i * stride``."""

    offset: float
    stride: float
    input_size: int


def layer_alignment(model: nn.Module, input_size: int) -> dict[str, Alignment]:
    """Each dissected layer's geometry on an ``input_size`` picture (models/geometry.py)."""
    features = model.features
    assert isinstance(features, nn.Sequential)
    geometry = sequential_geometry(features, "features")
    return {t: Alignment(geometry[name].offset, geometry[name].stride, input_size) for t, name in CONV_LAYERS.items()}


def upsample(acts: torch.Tensor, size: int, align: Alignment | None = None) -> torch.Tensor:
    """B x C x h x w maps -> B x C x size x size, over an input of ``align.input_size`` px.

    Without ``align`` the map is stretched over the whole picture (plain bilinear resize).
    """
    if align is None:
        return F.interpolate(acts, size=(size, size), mode="bilinear", align_corners=False)
    h, w = acts.shape[-2:]
    # Centre of each output pixel in input coordinates, then in map coordinates.
    centres = (torch.arange(size, dtype=torch.float32) + 0.5) * (align.input_size / size) - 0.5
    def normalized(extent: int) -> torch.Tensor:
        u = (centres - align.offset) / align.stride
        return 2 * u / max(extent - 1, 1) - 1
    gy, gx = torch.meshgrid(normalized(h), normalized(w), indexing="ij")
    grid = torch.stack([gx, gy], dim=-1).expand(acts.shape[0], size, size, 2)
    return F.grid_sample(acts, grid, mode="bilinear", padding_mode="border", align_corners=True)


@dataclass
class Concepts:
    """Concept masks for N images at the mask resolution."""

    names: list[str]
    kinds: list[str]  # "part" or "object" per name
    masks: torch.Tensor  # bool N x K x S x S

    def fractions(self) -> torch.Tensor:
        return self.masks.float().mean(dim=(0, 2, 3))

    def downsampled(self, mask_size: int) -> Concepts:
        """The same concepts on a coarser grid: area pooling, then majority (as Broden's masks are)."""
        if mask_size == self.masks.shape[-1]:
            return self
        return Concepts(self.names, self.kinds, F.adaptive_avg_pool2d(self.masks.float(), mask_size) >= 0.5)


def world_concepts(samples: Sequence[world.Sample], mask_size: int) -> Concepts:
    """Part masks and per-class object masks, area-downsampled to ``mask_size``."""
    names = list(world.PARTS) + list(world.CLASSES)
    kinds = ["part"] * len(world.PARTS) + ["object"] * len(world.CLASSES)
    n, size = len(samples), samples[0].image.shape[0]
    masks = np.zeros((n, len(names), size, size), dtype=bool)
    for i, s in enumerate(samples):
        for k, p in enumerate(world.PARTS):
            masks[i, k] = s.part_masks[p]
        masks[i, len(world.PARTS) + s.label] = s.object_mask
    return Concepts(names, kinds, torch.from_numpy(masks)).downsampled(mask_size)


def matched_quantiles(fractions: torch.Tensor, ladder: Sequence[float] = QUANTILE_LADDER) -> list[float]:
    """For each concept the ladder quantile whose top region best matches its coverage.

    A 0.5 % region cannot match a 5 % concept (IoU ceiling min(q, f) / max(q, f)), so a
    concept covering a fraction f of all pixels is compared with the unit's top-f region.
    """
    tops = np.array([1 - q for q in ladder])
    out = []
    for f in fractions.tolist():
        f = max(f, 1e-6)
        out.append(ladder[int(np.argmin(np.abs(np.log(tops) - math.log(f))))])
    return out


@torch.no_grad()
def layer_activations(model: nn.Module, inputs: torch.Tensor, layers: dict[str, str],
                      batch: int = 50) -> dict[str, torch.Tensor]:
    """title -> N x C x h x w activations of the named modules (forward hooks via capture)."""
    model.eval()
    chunks: dict[str, list[torch.Tensor]] = {t: [] for t in layers}
    for i in range(0, len(inputs), batch):
        with capture(model, list(layers.values())) as out:
            model(inputs[i:i + batch])
        for title, name in layers.items():
            chunks[title].append(out[name])
    return {t: torch.cat(c) for t, c in chunks.items()}


def unit_thresholds(acts: torch.Tensor, mask_size: int, quantiles: Sequence[float],
                    samples_per_image: int = 256, batch: int = 16, seed: int = 0,
                    align: Alignment | None = None) -> torch.Tensor:
    """C x Q thresholds: per-unit quantiles of the upsampled maps over all images.

    Estimated from a fixed random sample of pixel positions of every upsampled map (the
    full upsampled set would not fit in memory); positions are seeded, so repeatable.
    """
    gen = torch.Generator().manual_seed(seed)
    values = []
    pixels = mask_size * mask_size
    for i in range(0, len(acts), batch):
        up = upsample(acts[i:i + batch], mask_size, align)
        flat = up.flatten(2)  # B x C x P
        idx = torch.randint(0, pixels, (flat.shape[0], 1, min(samples_per_image, pixels)), generator=gen)
        values.append(flat.gather(2, idx.expand(-1, flat.shape[1], -1)).permute(1, 0, 2).reshape(flat.shape[1], -1))
    v, _ = torch.cat(values, dim=1).sort(dim=1)
    m = v.shape[1]
    cols = [v[:, min(m - 1, round(q * (m - 1)))] for q in quantiles]
    return torch.stack(cols, dim=1)


def iou_table(acts: torch.Tensor, concepts: Concepts, quantiles: Sequence[float],
              batch: int = 16, align: Alignment | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """C x K IoU of every unit with every concept at that concept's quantile; and thresholds."""
    n, c = acts.shape[:2]
    size = concepts.masks.shape[-1]
    levels = sorted(set(quantiles))
    level_of = [levels.index(q) for q in quantiles]
    thr = unit_thresholds(acts, size, levels, align=align)  # C x L
    k = len(concepts.names)
    inter = torch.zeros(c, k, dtype=torch.float64)
    region = torch.zeros(c, len(levels), dtype=torch.float64)
    area = torch.zeros(k, dtype=torch.float64)
    groups = [[j for j in range(k) if level_of[j] == li] for li in range(len(levels))]
    for i in range(0, n, batch):
        up = upsample(acts[i:i + batch], size, align)
        up = up.permute(1, 0, 2, 3).reshape(c, -1)  # C x P
        m = concepts.masks[i:i + batch].permute(0, 2, 3, 1).reshape(-1, k).float()  # P x K
        area += m.sum(0).double()
        for li, cols in enumerate(groups):
            if not cols:
                continue
            on = (up > thr[:, li:li + 1]).float()
            region[:, li] += on.sum(1).double()
            inter[:, cols] += (on @ m[:, cols]).double()
    union = region[:, level_of] + area.view(1, -1) - inter
    return (inter / union.clamp(min=1)).float(), thr

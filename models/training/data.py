"""What a training run learns from: the world's pictures, drawn on the fly, and their part targets.

Every step sees fresh pictures of the training world seed (models/world/seeds.py), drawn by
the DataLoader's worker, so nothing is stored. A parts task adds per picture either which
part types show (:func:`parts_present`) or where each one is at the tapped layer's
resolution (:func:`parts_where`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from models import world
from models.analysis.concepts import CONV_LAYERS, Alignment, layer_alignment
from models.analysis.probe import ideal_maps
from models.nets import MiniAlexNet
from models.training.config import TrainConfig

PartTargets = Callable[[world.Sample], torch.Tensor]
# How many training pictures part_weights measures the parts' areas on (a few seconds).
AREA_IMAGES = 2000


def parts_present(sample: world.Sample) -> torch.Tensor:
    """1.0 for each part type (world.PARTS order) visible in the picture, else 0.0."""
    return torch.tensor([float(sample.part_masks[p].sum() >= world.VISIBLE_PIXELS) for p in world.PARTS])


def parts_where(sample: world.Sample, align: Alignment, map_size: int) -> torch.Tensor:
    """K x h x h: each part type's share of every map pixel's stride-wide window (the
    layer's *ideal unit*, models/analysis/probe.py), the target of the "where" task."""
    masks = torch.from_numpy(np.stack([sample.part_masks[p] for p in world.PARTS]))[None]
    return ideal_maps(masks, align, map_size)[0]


def readout_alignment(net: MiniAlexNet, conv: int, input_size: int) -> tuple[Alignment, int]:
    """Where conv layer ``conv``'s map pixels sit on the input (the dissection's own
    alignment, so the "where" targets are its ideal units), and the map's side."""
    title = f"conv{conv}"
    relu = int(CONV_LAYERS[title].split(".")[1])  # "features.9" -> 9
    with torch.no_grad():
        side = net.features[:relu + 1](torch.zeros(1, 3, input_size, input_size)).shape[-1]
    return layer_alignment(net, input_size)[title], int(side)


class WorldDataset(Dataset[tuple[torch.Tensor, int, torch.Tensor]]):
    """Image ``i`` of world ``seed`` as uint8 CHW (normalized on the training side), its
    class and its part targets: ``part_targets(sample)`` (:func:`parts_present` or a
    :func:`parts_where`), or an empty tensor without a parts task (no work per image)."""

    def __init__(self, seed: int, length: int, size: int, offset: int = 0, drop_parts: float = 0.0,
                 part_targets: PartTargets | None = None) -> None:
        self.seed, self.length, self.size, self.offset = seed, length, size, offset
        self.drop_parts, self.part_targets = drop_parts, part_targets

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, torch.Tensor]:
        s = world.generate(self.seed, self.offset + i, self.size, drop_parts=self.drop_parts)
        parts = self.part_targets(s) if self.part_targets is not None else torch.empty(0)
        return torch.from_numpy(s.image).permute(2, 0, 1).contiguous(), s.label, parts


def part_weights(world_seed: int, power: float, size: int, images: int = AREA_IMAGES) -> torch.Tensor:
    """Per part type (world.PARTS order): mean area where it shows ** -power, mean 1.

    Measured on the first ``images`` training pictures, so the weights are a function of
    the config alone, and rounded to two decimals so the metadata can say them plainly."""
    if power == 0:
        return torch.ones(len(world.PARTS))
    area = np.zeros(len(world.PARTS))
    seen = np.zeros(len(world.PARTS))
    for i in range(images):
        s = world.generate(world_seed, i, size)
        px = np.array([s.part_masks[p].sum() for p in world.PARTS], dtype=np.float64)
        area += px
        seen += px > 0
    w = (area / np.maximum(seen, 1)) ** -power
    return torch.tensor(np.round(w / w.mean(), 2), dtype=torch.float32)


def _worker_init(_: int) -> None:
    # One thread per worker: the trainer's own two threads already fill the cores.
    torch.set_num_threads(1)


def training_loader(cfg: TrainConfig, part_targets: PartTargets | None) -> DataLoader[Any]:
    """The run's whole stream, ``cfg.steps`` batches, shuffled by a generator seeded with ``cfg.seed``."""
    data = WorldDataset(cfg.world_seed, cfg.steps * cfg.batch_size, cfg.input_size, drop_parts=cfg.drop_parts,
                        part_targets=part_targets)
    gen = torch.Generator().manual_seed(cfg.seed)
    return DataLoader(data, batch_size=cfg.batch_size, shuffle=True, generator=gen,
                      num_workers=cfg.workers, persistent_workers=cfg.workers > 0,
                      prefetch_factor=4 if cfg.workers > 0 else None,
                      worker_init_fn=_worker_init if cfg.workers > 0 else None)

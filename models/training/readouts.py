"""The parts task's readouts and losses: how a second task about the parts reads one conv layer.

A readout is a training aid, dropped before shipping: the shipped network is the
:class:`~models.nets.MiniAlexNet` alone. "names" reads which part types a picture shows
(:class:`PartsReadout`); "where" reads where each one is, from any mix of units
(:class:`PartsMapReadout`), from one unit training chooses (:class:`PartsUnitReadout`) or
from the unit given to it (:class:`PartsAssignedReadout`, the shipped recipe).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from models import world
from models.nets import MiniAlexNet
from models.training.config import PARTS_TASKS, READOUTS, TrainConfig
from models.training.data import PartTargets, part_weights, parts_present, parts_where, readout_alignment

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class PartsReadout(nn.Module):
    """Which part types a picture shows, read from one layer's units: each unit's largest
    value anywhere in the picture (so a unit says *whether*, and is never told *where*),
    then one linear layer. Used only while training."""

    def __init__(self, units: int, parts: int = len(world.PARTS)) -> None:
        super().__init__()
        self.linear = nn.Linear(units, parts)

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        return self.linear(maps.amax(dim=(2, 3)))


class PartsMapReadout(nn.Module):
    """Where each part type is, read from one layer's units at every map pixel: a 1x1
    convolution (one linear map of the units, the same everywhere). Used only while training."""

    def __init__(self, units: int, parts: int = len(world.PARTS)) -> None:
        super().__init__()
        self.linear = nn.Conv2d(units, parts, kernel_size=1)

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        return self.linear(maps)


class PartsUnitReadout(nn.Module):
    """Where each part type is, read from a single unit of the layer per part type: a
    softmax over the units (no unit chosen in advance: the training picks it), times a
    positive gain, plus a bias. ``temperature`` falls over training, so the mix becomes
    one unit and that unit alone must say where its part is. Used only while training."""

    def __init__(self, units: int, parts: int = len(world.PARTS)) -> None:
        super().__init__()
        self.select = nn.Parameter(torch.randn(parts, units) * 0.01)  # near-uniform, ties broken
        self.log_gain = nn.Parameter(torch.zeros(parts))
        self.bias = nn.Parameter(torch.zeros(parts))
        self.temperature = 1.0

    def weights(self) -> torch.Tensor:
        return torch.softmax(self.select / self.temperature, dim=1)  # parts x units

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        mixed = torch.einsum("ku,buhw->bkhw", self.weights(), maps)
        return mixed * self.log_gain.exp().view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)


class PartsAssignedReadout(nn.Module):
    """Where each part type is, read from one unit given to it before training: part type
    k (world.PARTS order) is unit k of the layer, times a positive gain, plus a bias.

    Unlike :class:`PartsUnitReadout` no unit is shared or chosen: a softmax that starts as
    an even mix sends every unit the same pull towards all parts at once in the first
    steps, and two part types can settle on one unit (the *one unit per part* run's petal
    and leaf did). The other units get no pull from the parts task at all. Used only while
    training; what the taught units became is measured, like every unit, by dissection."""

    def __init__(self, units: int, parts: int = len(world.PARTS)) -> None:
        super().__init__()
        if units < parts:
            raise ValueError(f"{parts} part types need at least {parts} units, not {units}")
        self.parts = parts
        self.log_gain = nn.Parameter(torch.zeros(parts))
        self.bias = nn.Parameter(torch.zeros(parts))

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        taught = maps[:, :self.parts]
        return taught * self.log_gain.exp().view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)


Readout = PartsReadout | PartsMapReadout | PartsUnitReadout | PartsAssignedReadout


def select_temperature(step: int, cfg: TrainConfig) -> float:
    """Geometric from 1 at the start to cfg.parts_final_temperature at the last step."""
    return float(cfg.parts_final_temperature ** (step / max(1, cfg.steps)))


def balanced_bce_loss(logits: torch.Tensor, target: torch.Tensor,
                      weights: torch.Tensor | None = None) -> torch.Tensor:
    """Per-pixel cross-entropy against each part type's share of the pixel, with the part's
    pixels and the rest weighted half and half over the batch, so a small part counts as
    much as a large one (plain cross-entropy would be nearly all background). Unlike a soft
    IoU it cannot stall: its gradient is p - t however sure the readout is. ``weights``:
    one per part type, for a weighted mean over the part types the batch shows."""
    pos = target.sum(dim=(0, 2, 3))
    neg = (1 - target).sum(dim=(0, 2, 3))
    on = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits), reduction="none")
    off = F.binary_cross_entropy_with_logits(logits, torch.zeros_like(logits), reduction="none")
    present = pos > 0  # a part type absent from the whole batch says nothing
    per_part = ((target * on).sum(dim=(0, 2, 3)) / pos.clamp(min=1e-6)
                + ((1 - target) * off).sum(dim=(0, 2, 3)) / neg.clamp(min=1e-6)) / 2
    if not bool(present.any()):
        return logits.sum() * 0.0
    if weights is None:
        return per_part[present].mean()
    return (per_part * weights)[present].sum() / weights[present].sum()


def parts_task(cfg: TrainConfig, net: MiniAlexNet) -> tuple[Readout | None, PartTargets | None]:
    """The recipe's parts readout and each picture's part targets (None, None: class labels alone)."""
    if cfg.parts_weight > 0 and cfg.parts_task not in PARTS_TASKS:
        raise ValueError(f"parts_task must be one of {PARTS_TASKS}, not {cfg.parts_task!r}")
    if cfg.parts_readout not in READOUTS:
        raise ValueError(f"parts_readout must be one of {READOUTS}, not {cfg.parts_readout!r}")
    units = cfg.widths[cfg.parts_layer - 1]
    if cfg.parts_task == "names" and cfg.parts_weight > 0:
        return PartsReadout(units), parts_present
    if cfg.parts_task == "where" and cfg.parts_weight > 0:
        align, side = readout_alignment(net, cfg.parts_layer, cfg.input_size)
        readouts: dict[str, type[Readout]] = {"linear": PartsMapReadout, "one-unit": PartsUnitReadout,
                                              "assigned": PartsAssignedReadout}
        return readouts[cfg.parts_readout](units), partial(parts_where, align=align, map_size=side)
    return None, None


def parts_loss_function(cfg: TrainConfig, device: str = "cpu") -> Loss:
    """The parts task's loss: binary cross-entropy for names, balanced (and weighted) for where."""
    if cfg.parts_task == "names":
        return nn.BCEWithLogitsLoss()
    # No weights at all for power 0, so the loss is the plain mean over part types.
    weights = part_weights(cfg.world_seed, cfg.parts_area_power, cfg.input_size).to(device)
    return partial(balanced_bce_loss, weights=weights if cfg.parts_area_power else None)

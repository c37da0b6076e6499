"""The parts readouts and losses: each readout reads what it should, and each loss lowers in training."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import nn

from models import world
from models.nets import MiniAlexNet
from models.preprocess import MEAN, STD, normalize
from models.training.config import TrainConfig
from models.training.data import parts_present, parts_where, readout_alignment
from models.training.network import BNTrainNet, he_init
from models.training.readouts import (
    PartsAssignedReadout,
    PartsMapReadout,
    PartsReadout,
    PartsUnitReadout,
    balanced_bce_loss,
    select_temperature,
)
from tests.models.training.conftest import TINY


def test_parts_readout_reads_each_units_largest_value() -> None:
    readout = PartsReadout(units=3, parts=2)
    with torch.no_grad():
        readout.linear.weight.copy_(torch.tensor([[1.0, 0.0, 2.0], [0.0, -1.0, 0.0]]))
        readout.linear.bias.copy_(torch.tensor([0.5, 0.0]))
    maps = torch.zeros(1, 3, 5, 5)
    maps[0, 0, 4, 1] = 3.0  # where a value is does not matter, only how large
    maps[0, 1, 0, 0] = 1.0
    maps[0, 2, 2, 2] = 0.25
    assert torch.equal(readout(maps), torch.tensor([[3.0 + 0.5 + 0.5, -1.0]]))


def test_naming_parts_lowers_the_parts_loss() -> None:
    torch.manual_seed(4)
    net = MiniAlexNet(replace(TINY, dropout=0.0).net_config())
    he_init(net)
    model = BNTrainNet(net, batchnorm=False)
    readout = PartsReadout(TINY.widths[3])
    samples = [world.generate(1, i, 64, drop_parts=0.5) for i in range(22)]
    x = normalize(np.stack([s.image for s in samples]), MEAN, STD)
    present = torch.stack([parts_present(s) for s in samples])
    opt = torch.optim.SGD([*model.parameters(), *readout.parameters()], lr=0.05, momentum=0.9)
    losses = []
    for _ in range(40):
        _, maps = model.forward_tapped(x, 4)
        loss = nn.functional.binary_cross_entropy_with_logits(readout(maps), present)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    # Below the best the readout could do without looking (each part type's base rate), so
    # the units' maps, not the readout's biases alone, carry which parts are in the picture.
    rate = present.mean(0).clamp(1e-6, 1 - 1e-6)
    blind = nn.functional.binary_cross_entropy(rate.expand_as(present), present).item()
    assert losses[-1] < 0.8 * blind, (losses, blind)


def test_balanced_cross_entropy_weighs_a_parts_pixels_as_much_as_the_rest() -> None:
    target = torch.zeros(1, 2, 2, 2)
    target[0, 0, 0, 0] = 1.0  # part 0 in one pixel of four; part 1 absent from the batch
    logits = torch.zeros(1, 2, 2, 2)
    logits[0, 0, 0, 0], logits[0, 0, 1, 1] = 2.0, -1.0

    def bce(z: float, t: float) -> float:  # cross-entropy of sigmoid(z) against t, by hand
        p = 1 / (1 + math.exp(-z))
        return -(t * math.log(p) + (1 - t) * math.log(1 - p))

    # Half the weight on the one part pixel, half on the mean of the three others.
    expected = (bce(2.0, 1) + (bce(0.0, 0) * 2 + bce(-1.0, 0)) / 3) / 2
    assert balanced_bce_loss(logits, target).item() == pytest.approx(expected, rel=1e-6)
    # Soft targets (a part covering half a pixel's window) count by their share.
    half = target * 0.5
    expected = (0.5 * bce(2.0, 1) / 0.5 + (0.5 * bce(2.0, 0) + bce(0.0, 0) * 2 + bce(-1.0, 0)) / 3.5) / 2
    assert balanced_bce_loss(logits, half).item() == pytest.approx(expected, rel=1e-6)
    assert balanced_bce_loss(logits, torch.zeros_like(target)).item() == 0.0


def test_part_weights_make_a_weighted_mean_over_the_part_types_in_the_batch() -> None:
    target = torch.zeros(1, 3, 2, 2)
    target[0, 0, 0, 0] = 1.0
    target[0, 1, 1, 1] = 1.0  # part 2 absent: its weight must not count
    logits = torch.zeros(1, 3, 2, 2)
    logits[0, 1, 1, 1] = 3.0

    def bce(z: float, t: float) -> float:
        p = 1 / (1 + math.exp(-z))
        return -(t * math.log(p) + (1 - t) * math.log(1 - p))

    part0 = (bce(0.0, 1) + bce(0.0, 0)) / 2
    part1 = (bce(3.0, 1) + bce(0.0, 0)) / 2
    weights = torch.tensor([1.0, 3.0, 100.0])
    assert balanced_bce_loss(logits, target, weights).item() == pytest.approx((part0 + 3 * part1) / 4, rel=1e-6)
    assert balanced_bce_loss(logits, target).item() == pytest.approx((part0 + part1) / 2, rel=1e-6)


def test_saying_where_parts_are_lowers_that_loss_from_the_start() -> None:
    """From a fresh He-initialized network, as a run starts (a soft-IoU loss stalled there)."""
    torch.manual_seed(5)
    cfg = TrainConfig()
    net = MiniAlexNet(cfg.net_config())
    he_init(net)
    model = BNTrainNet(net, batchnorm=False)
    align, side = readout_alignment(net, 4, 128)
    samples = [world.generate(1, i, 128) for i in range(22)]
    x = normalize(np.stack([s.image for s in samples]), MEAN, STD)
    targets = torch.stack([parts_where(s, align, side) for s in samples])
    readout = PartsMapReadout(cfg.widths[3])
    opt = torch.optim.SGD([*model.parameters(), *readout.parameters()], lr=0.01, momentum=0.9)
    losses = []
    for _ in range(15):
        _, maps = model.forward_tapped(x, 4)
        loss = balanced_bce_loss(readout(maps), targets)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    # ln 2 is the least any constant answer can score (p = 1/2 everywhere): below it the
    # readout's maps follow the parts in the pictures.
    assert losses[-1] < 0.95 * math.log(2) < losses[0], losses


def test_the_one_unit_readout_learns_to_read_the_unit_that_finds_the_part() -> None:
    torch.manual_seed(0)
    target = (torch.rand(32, 1, 6, 6) > 0.7).float()
    maps = torch.rand(32, 5, 6, 6)  # four units of noise
    maps[:, 3] = target[:, 0] * 2.0  # unit 3 is where the part is
    readout = PartsUnitReadout(5, parts=1)
    cfg = replace(TrainConfig(), steps=300, parts_final_temperature=0.05)
    opt = torch.optim.SGD(readout.parameters(), lr=0.5)
    for step in range(cfg.steps):
        readout.temperature = select_temperature(step, cfg)
        loss = balanced_bce_loss(readout(maps), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert select_temperature(0, cfg) == 1.0
    assert select_temperature(cfg.steps, cfg) == pytest.approx(0.05)
    w = readout.weights()[0].detach()
    assert int(w.argmax()) == 3 and float(w[3]) > 0.99


def test_the_assigned_readout_reads_unit_k_for_part_k_alone() -> None:
    readout = PartsAssignedReadout(5, parts=3)
    with torch.no_grad():
        readout.log_gain.copy_(torch.log(torch.tensor([2.0, 3.0, 0.5])))
        readout.bias.copy_(torch.tensor([-1.0, 0.0, 4.0]))
    maps = torch.arange(2 * 5 * 2 * 2, dtype=torch.float32).view(2, 5, 2, 2)
    out = readout(maps)
    assert out.shape == (2, 3, 2, 2)
    for k, (gain, bias) in enumerate([(2.0, -1.0), (3.0, 0.0), (0.5, 4.0)]):
        assert torch.allclose(out[:, k], maps[:, k] * gain + bias)
    maps[:, 3:] = 1e6  # the units given no part type do not reach the readout
    assert torch.allclose(readout(maps), out)
    with pytest.raises(ValueError, match="at least 12 units"):
        PartsAssignedReadout(8)


def test_the_assigned_readout_trains_only_its_units() -> None:
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 16, 3, padding=1)
    readout = PartsAssignedReadout(16)
    x = torch.randn(4, 3, 6, 6)
    target = (torch.rand(4, len(world.PARTS), 6, 6) > 0.8).float()
    balanced_bce_loss(readout(torch.relu(conv(x))), target).backward()
    assert conv.weight.grad is not None
    grad = conv.weight.grad.abs().sum(dim=(1, 2, 3))
    assert bool((grad[:12] > 0).all()) and bool((grad[12:] == 0).all())

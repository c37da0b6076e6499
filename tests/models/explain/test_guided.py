"""Guided backpropagation: exact on a hand-made net, input-shaped, zero beyond the receptive field."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from models.explain.guided import guided_backprop
from models.layers import describe_layers
from models.nets import MiniAlexNet, NetConfig
from models.zoo.registry import prepare_for_serving


def test_guided_relu_rule_by_hand() -> None:
    """y = w2 * relu(w1 * x): guided keeps a gradient only where x > 0 and it is positive."""
    first = nn.Conv2d(1, 2, 1, bias=False)
    second = nn.Conv2d(2, 1, 1, bias=False)
    with torch.no_grad():
        first.weight.copy_(torch.tensor([1.0, -1.0]).view(2, 1, 1, 1))
        second.weight.copy_(torch.tensor([2.0, -3.0]).view(1, 2, 1, 1))
    net = prepare_for_serving(nn.Sequential(first, nn.ReLU(inplace=True), second))
    x = torch.tensor([[[1.0, -2.0]]])  # [1, 1, 2]: one pixel positive, one negative
    grad = guided_backprop(net, x, "2", 0, objective="sum")
    # Pixel 1 (x = 1): channel 0 is on (1 > 0) with gradient 2 > 0 -> 2 * 1; channel 1 is off.
    # Pixel 2 (x = -2): channel 1 is on (2 > 0) but its gradient -3 < 0 is blocked -> 0.
    # Plain backprop would give [2, 3]; guided gives [2, 0].
    np.testing.assert_array_equal(grad, np.array([[[2.0, 0.0]]], dtype=np.float32))
    assert all(m.inplace for m in net.modules() if isinstance(m, nn.ReLU))
    assert all(not m._forward_hooks for m in net.modules())


@pytest.mark.parametrize("layer", ["features.4", "features.7", "features.11"])
def test_zero_outside_the_receptive_field(layer: str) -> None:
    torch.manual_seed(0)
    net = MiniAlexNet(NetConfig(widths=(16, 24, 32, 32, 24), hidden=32))
    prepare_for_serving(net)
    size = 160
    x = torch.randn(3, size, size, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        maps = net.features[: int(layer.split(".")[1]) + 1](x[None])[0]
    channel = int(maps.flatten(1).max(1).values.argmax())  # a unit that is on somewhere
    grad = guided_backprop(net, x, layer, channel, objective="max")
    assert grad.shape == (3, size, size)
    assert np.abs(grad).sum() > 0
    # The unit's strongest position, and the input square its receptive field covers.
    out = maps[channel]
    row, col = divmod(int(out.argmax()), out.shape[1])
    info = describe_layers(net, size)[layer]
    half = (info.receptive_field - 1) / 2
    cy, cx = info.offset + row * info.stride, info.offset + col * info.stride
    ys, xs = np.nonzero(np.abs(grad).sum(0))
    assert ys.min() >= cy - half and ys.max() <= cy + half
    assert xs.min() >= cx - half and xs.max() <= cx + half
    outside = np.ones((size, size), dtype=bool)
    top, left = max(0, int(np.ceil(cy - half))), max(0, int(np.ceil(cx - half)))
    outside[top : int(cy + half) + 1, left : int(cx + half) + 1] = False
    assert outside.any() and not np.abs(grad).sum(0)[outside].any()


def test_channel_out_of_range() -> None:
    net = prepare_for_serving(MiniAlexNet(NetConfig(widths=(8, 8, 8, 8, 8), hidden=16)))
    with pytest.raises(IndexError):
        guided_backprop(net, torch.zeros(3, 64, 64), "features.9", 8)
    assert all(m.inplace for m in net.modules() if isinstance(m, nn.ReLU))

"""The hook context manager: exact outputs on a hand-made model, clean-up, loud failures."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from models.capture import CaptureError, capture
from models.nets import MiniAlexNet


def tiny_net() -> nn.Sequential:
    conv = nn.Conv2d(1, 1, kernel_size=2, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([[[[1.0, -1.0], [0.0, 0.0]]]]))
    return nn.Sequential(conv, nn.ReLU(inplace=True), nn.Flatten())


def all_hooks(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) for m in model.modules())


def test_records_exact_values_and_survives_inplace_relu() -> None:
    net = tiny_net()
    x = torch.tensor([[[[1.0, 3.0, 2.0], [0.0, 0.0, 0.0], [5.0, 1.0, 0.0]]]])
    with capture(net, ["0", "1"]) as out:
        net(x)
    # Row differences x[i, j] - x[i, j + 1] by hand: conv output before the in-place ReLU.
    assert out["0"].tolist() == [[[[-2.0, 1.0], [0.0, 0.0]]]]
    assert out["1"].tolist() == [[[[0.0, 1.0], [0.0, 0.0]]]]
    assert all_hooks(net) == 0


def test_hooks_removed_after_exception() -> None:
    net = tiny_net()
    with pytest.raises(RuntimeError), capture(net, ["0"]):
        net(torch.zeros(1, 3, 4, 4))  # wrong channel count: the forward raises
    assert all_hooks(net) == 0


def test_unknown_layer_is_an_error() -> None:
    with pytest.raises(CaptureError, match="nope"), capture(tiny_net(), ["nope"]):
        pass


def test_layer_that_saw_nothing_is_an_error() -> None:
    net = tiny_net()
    with pytest.raises(CaptureError, match="no output"), capture(net, ["0"]):
        pass  # no forward pass
    assert all_hooks(net) == 0


def test_works_by_dotted_name_on_alexnet_layout() -> None:
    net = MiniAlexNet().eval()
    x = torch.randn(1, 3, 128, 128)
    with torch.no_grad(), capture(net, ["features.0", "features.1", "classifier.6"]) as out:
        logits = net(x)
    # Independent: run the layers by hand.
    conv = net.features[0](x)
    assert torch.equal(out["features.0"], conv)
    assert torch.equal(out["features.1"], conv.clamp_min(0))
    assert torch.equal(out["classifier.6"], logits)


def test_when_complete_runs_once_per_pass_after_the_named_layers_and_before_the_rest() -> None:
    torch.manual_seed(0)
    net = tiny_net()
    events: list[str] = []
    last = net[len(net) - 1]
    last.register_forward_pre_hook(lambda *_: events.append("last layer starts"))

    def complete(outputs: dict[str, torch.Tensor]) -> None:
        events.append(f"complete: {sorted(outputs)}")
        # The maps are there already, values and all: the caller can start on them.
        conv = net[0]
        assert isinstance(conv, nn.Conv2d)
        torch.testing.assert_close(outputs["1"], torch.relu(nn.functional.conv2d(x, conv.weight)))

    x = torch.randn(2, 1, 8, 8)
    with torch.no_grad(), capture(net, ["1", "0"], when_complete=complete):
        net(x)
        net(x)
    assert events == ["complete: ['0', '1']", "last layer starts"] * 2
    last._forward_pre_hooks.clear()
    assert all_hooks(net) == 0

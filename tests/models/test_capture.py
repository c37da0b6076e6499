"""The hook context manager: exact outputs on a hand-made model, clean-up, loud failures."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from models.capture import CaptureError, Hook, capture, hooked
from models.nets import MiniAlexNet


def tiny_net() -> nn.Sequential:
    conv = nn.Conv2d(1, 1, kernel_size=2, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([[[[1.0, -1.0], [0.0, 0.0]]]]))
    return nn.Sequential(conv, nn.ReLU(inplace=True), nn.Flatten())


def all_hooks(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


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


def test_on_output_runs_for_each_named_layer_as_soon_as_it_has_its_output() -> None:
    torch.manual_seed(0)
    net = tiny_net()
    events: list[str] = []
    for index, module in enumerate(net):
        module.register_forward_pre_hook(lambda *_, index=index: events.append(f"layer {index} starts"))
    x = torch.randn(2, 1, 8, 8)
    conv = net[0]
    assert isinstance(conv, nn.Conv2d)

    def arrived(name: str, output: torch.Tensor) -> None:
        events.append(f"output of {name}")
        # The map is there already, values and all: the caller can start on it.
        expected = nn.functional.conv2d(x, conv.weight)
        torch.testing.assert_close(output, expected if name == "0" else torch.relu(expected))

    with torch.no_grad(), capture(net, ["1", "0"], on_output=arrived):
        net(x)
        net(x)
    one_pass = ["layer 0 starts", "output of 0", "layer 1 starts", "output of 1"]
    one_pass += [f"layer {i} starts" for i in range(2, len(net))]
    assert events == one_pass * 2
    for module in net:
        module._forward_pre_hooks.clear()
    assert all_hooks(net) == 0


def test_maps_come_back_in_the_usual_layout_from_a_channels_last_network() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(inplace=True), nn.Conv2d(4, 5, 3)).eval()
    x = torch.randn(2, 3, 9, 9)
    with torch.no_grad():
        plain = {"0": net[0](x), "2": net[2](torch.relu(net[0](x)))}
        net.to(memory_format=torch.channels_last)
        with capture(net, ["0", "2"]) as out:
            net(x)
    for name, expected in plain.items():
        assert out[name].is_contiguous()  # numpy reads them as [B, C, H, W] without strides
        torch.testing.assert_close(out[name], expected)


def test_hooked_runs_pre_and_post_hooks_in_order_and_removes_them_even_on_error() -> None:
    net = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
    events: list[str] = []
    replaced = torch.full((1, 2), 7.0)
    hooks: list[Hook] = [
        (net[0], "pre", lambda _m, args: events.append(f"pre {tuple(args[0].shape)}")),
        (net[0], "post", lambda _m, _a, out: events.append("post")),
        (net[1], "post", lambda _m, _a, out: replaced),  # a post hook's value replaces the output
    ]
    with torch.no_grad(), hooked(hooks):
        result = net(torch.zeros(1, 2))
    assert events == ["pre (1, 2)", "post"] and torch.equal(result, replaced)
    assert all_hooks(net) == 0

    def boom(_m: nn.Module, _a: object, _o: object) -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"), torch.no_grad(), hooked([(net[0], "post", boom)]):
        net(torch.zeros(1, 2))
    assert all_hooks(net) == 0
    with pytest.raises(ValueError, match="'pre' or 'post'"), hooked([(net[0], "pre", boom), (net[1], "after", boom)]):
        pass
    assert all_hooks(net) == 0  # the one registered before the bad kind is gone too

"""Grad-CAM against an independent, plain-autograd implementation; clean-up of hooks and grad mode."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from models.capture import CaptureError, gradient_from
from models.explain.gradcam import gradcam
from models.nets import MiniAlexNet, NetConfig
from models.zoo.registry import prepare_for_serving


def frozen_net(seed: int = 0) -> MiniAlexNet:
    torch.manual_seed(seed)
    net = MiniAlexNet(NetConfig(widths=(16, 24, 32, 32, 24), hidden=32))
    prepare_for_serving(net)
    return net


def reference_gradcam(network: MiniAlexNet, x: torch.Tensor, layer: str, index: int) -> np.ndarray:
    """Textbook Grad-CAM: a fresh copy with requires_grad on, full backward, no hooks."""
    net = copy.deepcopy(network)
    for p in net.parameters():
        p.requires_grad_(True)
    kept: list[torch.Tensor] = []
    out = x[None]
    position = int(layer.split(".")[1])
    for i, module in enumerate(net.features):
        out = torch.relu(out) if isinstance(module, nn.ReLU) else module(out)  # out of place
        if i == position:
            out.retain_grad()
            kept.append(out)
    logits = net.classifier(torch.flatten(net.avgpool(out), 1))
    logits[0, index].backward()
    acts, grads = kept[0][0].detach(), kept[0].grad[0]  # type: ignore[index]
    cam = torch.relu((grads.mean(dim=(1, 2))[:, None, None] * acts).sum(0))
    return (cam / cam.max() if cam.max() > 0 else cam).numpy()


@pytest.mark.parametrize("layer", ["features.11", "features.10", "features.9", "features.7", "features.4"])
@pytest.mark.parametrize("class_index", [None, 7])
def test_matches_plain_autograd(layer: str, class_index: int | None) -> None:
    network = frozen_net()
    x = torch.randn(3, 96, 96, generator=torch.Generator().manual_seed(1))
    cam, index = gradcam(network, x, layer, class_index)
    if class_index is None:
        assert index == int(network(x[None])[0].argmax())
    else:
        assert index == class_index
    expected = reference_gradcam(network, x, layer, index)
    assert cam.shape == expected.shape and cam.dtype == np.float32
    np.testing.assert_allclose(cam, expected, atol=1e-5)
    assert cam.min() >= 0 and cam.max() <= 1


def test_leaves_no_trace() -> None:
    network = frozen_net()
    x = torch.randn(3, 64, 64)
    before = {k: v.clone() for k, v in network.state_dict().items()}
    for grad_mode in (True, False):
        with torch.set_grad_enabled(grad_mode):
            gradcam(network, x, "features.11")
            assert torch.is_grad_enabled() == grad_mode
    assert all(not m._forward_hooks for m in network.modules())
    assert all(m.inplace for m in network.modules() if isinstance(m, nn.ReLU))
    assert all(p.grad is None and not p.requires_grad for p in network.parameters())
    assert all(torch.equal(before[k], v) for k, v in network.state_dict().items())


def test_backward_stops_at_the_layer() -> None:
    """Nothing before the chosen layer is recorded: the graph starts at the leaf."""
    network = frozen_net()
    for p in network.parameters():
        p.requires_grad_(True)  # even trainable early layers get no gradient
    with gradient_from(network, "features.7") as leaf:
        logits = network(torch.randn(1, 3, 64, 64))
        logits[0, 0].backward()
    assert leaf["activations"].grad is not None
    assert all(p.grad is None for p in network.features[:7].parameters())
    assert all(p.grad is not None for p in network.features[8:].parameters())


def test_unknown_layer_and_class() -> None:
    network = frozen_net()
    with pytest.raises(CaptureError):
        gradcam(network, torch.zeros(3, 64, 64), "features.99")
    with pytest.raises(IndexError):
        gradcam(network, torch.zeros(3, 64, 64), "features.11", 11)
    with pytest.raises(ValueError, match="spatial"):
        gradcam(network, torch.zeros(3, 64, 64), "classifier.5")
    assert all(not m._forward_hooks for m in network.modules())


def test_memory_does_not_grow_in_a_loop() -> None:
    """pytorch-grad-cam's check: repeated calls keep no graphs or activations alive."""
    import gc
    import weakref

    network = frozen_net()
    x = torch.randn(3, 64, 64)
    refs = []
    for _ in range(5):
        with gradient_from(network, "features.11") as leaf:
            network(x[None])[0, 0].backward()
        refs.append(weakref.ref(leaf["activations"]))
        del leaf
    gc.collect()
    assert all(r() is None for r in refs)

"""Feature visualization excites its unit; top patches find the strongest pictures."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from models.explain.featvis import VisConfig, Visualization, centre_activation, to_rgb, visualize
from models.explain.patches import crop, top_patches
from models.geometry import Geometry
from models.nets import MiniAlexNet, NetConfig
from models.zoo.registry import prepare_for_serving

MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)


def test_parametrization_is_a_valid_smooth_image() -> None:
    spectrum = torch.randn(2, 3, 32, 17, 2)
    image = to_rgb(spectrum, 32, 1.0)
    assert image.shape == (2, 3, 32, 32) and image.min() > 0 and image.max() < 1
    # The 1/f scaling puts most energy at low frequencies: neighbours are correlated.
    flat = image[0, 0]
    assert torch.corrcoef(torch.stack([flat[:, :-1].ravel(), flat[:, 1:].ravel()]))[0, 1] > 0.5


def test_visualization_beats_random_pictures_and_leaves_the_net_alone() -> None:
    torch.manual_seed(0)
    net = prepare_for_serving(MiniAlexNet(NetConfig(widths=(8, 16, 16, 16, 16), hidden=16)))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    channels = [0, 3, 5, 9]
    images = visualize(net, "features.9", channels, MEAN, STD, VisConfig(steps=48))
    assert images.shape == (4, 64, 64, 3) and images.dtype == np.uint8
    found = centre_activation(net, "features.9", channels, images, MEAN, STD)
    noise = np.random.default_rng(0).integers(0, 256, (len(channels), 64, 64, 3), dtype=np.uint8)
    baseline = centre_activation(net, "features.9", channels, noise, MEAN, STD)
    assert (found > baseline).all()
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert all(not m._forward_hooks for m in net.modules())
    assert all(m.inplace for m in net.modules() if isinstance(m, nn.ReLU))


def test_a_first_layer_silent_on_flat_pictures_still_lets_the_picture_move() -> None:
    """conv1 = edge filters (weights summing to zero) with a negative bias: dead on any flat picture.

    A network trained without BatchNorm can be like this; starting from an almost flat picture
    (Lucid's spectrum std 0.01) no gradient reaches conv2 and the picture never changes."""
    torch.manual_seed(2)
    net = prepare_for_serving(MiniAlexNet(NetConfig(widths=(8, 16, 16, 16, 16), hidden=16)))
    assert isinstance(net, MiniAlexNet)
    conv1 = net.features[0]
    assert isinstance(conv1, nn.Conv2d) and conv1.bias is not None
    with torch.no_grad():
        conv1.weight -= conv1.weight.mean(dim=(1, 2, 3), keepdim=True)
        conv1.bias.fill_(-0.05)
        grey = torch.zeros(1, 3, 64, 64)  # normalized flat grey
        assert not net.features[:2](grey).any()
    channels = [0, 1, 2, 3]
    for init, moves in ((0.001, False), (VisConfig().init, True)):
        run = Visualization(net, "features.4", channels, MEAN, STD, VisConfig(steps=24, init=init))
        start = run.pixels()
        run.step(24)
        changed = np.abs(run.pixels().astype(int) - start.astype(int)).max() > 2
        assert changed == moves, init
    found = centre_activation(net, "features.4", channels, run.pixels(), MEAN, STD)
    assert (found > 0).all()


def test_a_run_in_slices_equals_one_uninterrupted_run() -> None:
    """The server advances on-demand visualizations a few steps per turn on its thread."""
    torch.manual_seed(1)
    net = prepare_for_serving(MiniAlexNet(NetConfig(widths=(8, 16, 16, 16, 16), hidden=16)))
    config = VisConfig(size=64, steps=10)
    whole = visualize(net, "features.7", [2], MEAN, STD, config)
    run = Visualization(net, "features.7", [2], MEAN, STD, config)
    finished = [run.step(4), run.step(4), run.step(4)]
    assert finished == [False, False, True] and run.steps_done == 10
    assert np.array_equal(run.pixels(), whole)
    assert run.step(4) and run.steps_done == 10  # past the end it does nothing more


def test_crop_pads_with_grey() -> None:
    image = np.zeros((10, 10, 3), dtype=np.uint8)
    image[:, :] = 200
    patch = crop(image, (0.0, 0.0), 5)  # centred on the corner pixel
    assert patch.shape == (5, 5, 3)
    assert (patch[2:, 2:] == 200).all() and (patch[:2] == 128).all() and (patch[:, :2] == 128).all()


def test_top_patches_rank_the_brightest_pictures() -> None:
    """A 1x1 'sum of channels' unit: its strongest pictures are the brightest ones."""
    conv = nn.Conv2d(3, 1, 1)
    with torch.no_grad():
        conv.weight.fill_(1.0)
        conv.bias.zero_()  # type: ignore[union-attr]
    net = prepare_for_serving(nn.Sequential(conv))
    levels = np.array([10, 250, 90, 170, 30], dtype=np.uint8)
    images = np.broadcast_to(levels[:, None, None, None], (5, 8, 8, 3)).copy()
    images[2, 3, 4] = 255  # one pixel brighter than anything: its patch centres there
    top = top_patches(net, "0", Geometry(1, 1, 0.0), images, (0, 0, 0), (1, 1, 1), k=3, tile=4)
    assert top.images[0].tolist() == [2, 1, 3]
    assert (top.patches[0, 0] == 255).all() and (top.patches[0, 1] == 250).all()
    assert top.patches.shape == (1, 3, 4, 4, 3)
    assert np.all(np.diff(top.values[0]) <= 0) and top.best.shape == (5, 1)

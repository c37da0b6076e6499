"""The training pictures' part targets: which part types show, where each one is, and how much each weighs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models import world
from models.nets import MiniAlexNet
from models.training.config import TrainConfig
from models.training.data import part_weights, parts_present, parts_where, readout_alignment


def test_parts_present_counts_visible_pixels_of_each_part_type() -> None:
    whole = world.generate(21, 6, 128, post=False)  # a face
    dropped = world.generate(21, 6, 128, post=False, drop_parts=1.0)
    for s in (whole, dropped):
        present = parts_present(s)
        assert present.shape == (len(world.PARTS),)
        for k, p in enumerate(world.PARTS):
            assert present[k].item() == float(int(s.part_masks[p].sum()) >= world.VISIBLE_PIXELS)
    names = {p for k, p in enumerate(world.PARTS) if parts_present(whole)[k]}
    assert names == {"eye", "mouth", "ear", "nose"}  # what a face is drawn with
    assert parts_present(dropped).sum() < parts_present(whole).sum()


def test_layer_alignment_is_where_the_layers_pixels_sit() -> None:
    net = MiniAlexNet(TrainConfig().net_config())
    align, side = readout_alignment(net, 4, 128)
    # conv1 7x7 stride 2 pad 3, pool 3/2, conv2 5x5 pad 2, pool 3/2, conv3 and conv4 3x3 pad 1:
    # jumps before each layer 1, 2, 4, 4, 8, 8; the first centre moves (k - 1) / 2 - padding of them.
    assert (align.stride, align.input_size, side) == (8, 128, 15)
    assert align.offset == 1 * 0 + 2 * 1 + 4 * 0 + 4 * 1 + 8 * 0 + 8 * 0
    assert net.features[:10](torch.zeros(1, 3, 128, 128)).shape[-1] == side


def test_where_targets_are_each_parts_share_of_a_pixels_window() -> None:
    net = MiniAlexNet(TrainConfig().net_config())
    align, side = readout_alignment(net, 4, 128)
    sample = world.generate(21, 6, 128, post=False)  # a face: eyes, mouth, ears, nose
    target = parts_where(sample, align, side)
    assert target.shape == (len(world.PARTS), side, side)
    # An inner pixel's window is [c - 4, c + 4] around its centre c; input pixel j spans
    # [j - 0.5, j + 0.5], so the two end pixels count half.
    weights = np.array([0.5] + [1.0] * 7 + [0.5]) / 8
    checked = 0
    for k, part in enumerate(world.PARTS):
        mask = sample.part_masks[part].astype(np.float64)
        for i in range(1, side - 1):
            for j in range(1, side - 1):
                ci, cj = int(align.offset + i * align.stride), int(align.offset + j * align.stride)
                window = mask[ci - 4:ci + 5, cj - 4:cj + 5]
                expected = weights @ window @ weights
                assert abs(target[k, i, j].item() - expected) < 1e-5
                checked += int(expected > 0)
    assert checked > 10


def test_part_weights_follow_the_parts_areas_in_the_training_pictures() -> None:
    assert part_weights(1, 0.0, 128).tolist() == [1.0] * len(world.PARTS)
    images = 40
    samples = [world.generate(1, i, 128) for i in range(images)]
    mean_area = []
    for p in world.PARTS:  # mean over the pictures that show the part type
        shown = [float(s.part_masks[p].sum()) for s in samples if s.part_masks[p].any()]
        mean_area.append(sum(shown) / len(shown))
    raw = [a ** -0.5 for a in mean_area]
    expected = [round(r / (sum(raw) / len(raw)), 2) for r in raw]
    got = part_weights(1, 0.5, 128, images=images)
    assert got.tolist() == pytest.approx(expected, abs=0.006)
    # Smaller parts weigh more: the mouth (a few pixels) above the leaf (a large blob).
    assert got[world.PARTS.index("mouth")] > 1 > got[world.PARTS.index("leaf")]

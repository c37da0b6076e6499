"""The IoU core: aligned upsampling, matched quantiles, world concept masks, and IoU of a blind unit."""

from __future__ import annotations

import pytest
import torch

from models import world
from models.analysis.concepts import Alignment, iou_table, matched_quantiles, upsample, world_concepts
from tests.models.analysis.conftest import square_pictures


def test_iou_is_low_for_a_unit_blind_to_the_concept() -> None:
    x, concepts = square_pictures(seed=1)
    random = torch.rand(len(x), 1, 32, 32, generator=torch.Generator().manual_seed(0))
    iou, _ = iou_table(random, concepts, [0.95, 0.95])
    assert iou.max() < 0.15


def test_aligned_upsampling_puts_each_map_pixel_at_its_receptive_field_centre() -> None:
    # A 7-pixel map whose pixel i is centred at input x = 2 + 4 i, on a 32 px input.
    align = Alignment(offset=2.0, stride=4.0, input_size=32)
    for i in range(7):
        one = torch.zeros(1, 1, 7, 7)
        one[0, 0, i, i] = 1.0
        up = upsample(one, 32, align)[0, 0]
        assert up.shape == (32, 32)
        c = 2 + 4 * i
        assert float(up[c, c]) == pytest.approx(1.0)
        if i < 6:  # halfway to the next centre, half the value; at the next centre, none
            assert float(up[c, c + 2]) == pytest.approx(0.5) and float(up[c, c + 4]) == pytest.approx(0.0, abs=1e-6)
    # Past the outermost centres the edge value is held (no fading to zero).
    edge = torch.zeros(1, 1, 7, 7)
    edge[0, 0, 6, 6] = 1.0
    assert float(upsample(edge, 32, align)[0, 0, 31, 31]) == pytest.approx(1.0)


def test_quantile_matches_concept_coverage() -> None:
    qs = matched_quantiles(torch.tensor([0.0008, 0.005, 0.06, 0.5]))
    assert qs == [0.999, 0.995, 0.95, 0.9]


def test_world_concepts_put_objects_in_their_class_channel() -> None:
    samples = [world.generate(0, i, 64) for i in range(11)]
    c = world_concepts(samples, 32)
    assert c.masks.shape == (11, len(world.PARTS) + len(world.CLASSES), 32, 32)
    for i, s in enumerate(samples):
        objects = c.masks[i, len(world.PARTS):].flatten(1).any(1)
        assert objects.nonzero().flatten().tolist() == [s.label]

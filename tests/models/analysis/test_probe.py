"""The ideal unit and the concept probes, on hand-made masks and activations."""

from __future__ import annotations

import numpy as np
import torch

from models.analysis import probe
from models.analysis.concepts import Alignment, Concepts, iou_table

IDENTITY = Alignment(offset=0.0, stride=1.0, input_size=32)


def _squares(n: int, seed: int, size: int = 32) -> torch.Tensor:
    """N x 1 x S x S masks: one 6x6 square per image at a random place."""
    rng = np.random.default_rng(seed)
    masks = np.zeros((n, 1, size, size), dtype=bool)
    for i in range(n):
        y, x = rng.integers(0, size - 6, 2)
        masks[i, 0, y:y + 6, x:x + 6] = True
    return torch.from_numpy(masks)


def _concepts(masks: torch.Tensor) -> Concepts:
    return Concepts(["square"], ["part"], masks)


def _matched(masks: torch.Tensor) -> list[float]:
    """The quantile whose top region is as large as the concept (as the dissection picks)."""
    return [1.0 - float(masks.float().mean())]


def test_ideal_maps_at_full_resolution_are_the_masks() -> None:
    masks = _squares(4, seed=0)
    assert torch.equal(probe.ideal_maps(masks, IDENTITY, 32), masks.float())


def test_ideal_map_pixel_is_the_share_of_its_stride_window() -> None:
    # Stride 4 with centres at 1.5 + 4i: map pixel (0, 0) covers input pixels 0..3 x 0..3.
    align = Alignment(offset=1.5, stride=4.0, input_size=16)
    masks = torch.zeros(1, 1, 16, 16, dtype=torch.bool)
    masks[0, 0, 0:2, 0:2] = True  # 4 of the window's 16 pixels
    masks[0, 0, 4:8, 8:12] = True  # all of map pixel (1, 2)
    maps = probe.ideal_maps(masks, align, 4)[0, 0]
    expected = torch.zeros(4, 4)
    expected[0, 0], expected[1, 2] = 0.25, 1.0
    torch.testing.assert_close(maps, expected)


def test_ideal_map_windows_on_integer_centres_share_edge_pixels_by_halves() -> None:
    # Centres on pixels 2, 6, 10: windows [0, 4], [4, 8], [8, 12]. Input pixel 4 spans
    # [3.5, 4.5], half in the first window and half in the second (each 4 wide); the last
    # window runs off the picture at 11.5, so it averages over the 3.5 that remain.
    align = Alignment(offset=2.0, stride=4.0, input_size=12)
    masks = torch.zeros(1, 1, 12, 12, dtype=torch.bool)
    masks[0, 0, :, 4] = True
    masks[0, 0, :, 11] = True
    maps = probe.ideal_maps(masks, align, 3)[0, 0]
    row = torch.tensor([0.5 / 4, 0.5 / 4, 1 / 3.5])
    torch.testing.assert_close(maps, row.expand(3, 3))


def test_ceiling_is_one_at_full_resolution_and_falls_with_coarser_maps() -> None:
    masks = _squares(40, seed=1)
    concepts = _concepts(masks)
    fine = probe.ceiling(masks, concepts, [0.9], IDENTITY, 32)
    coarse = probe.ceiling(masks, concepts, [0.9], Alignment(3.5, 8.0, 32), 4)
    assert float(fine[0]) == 1.0
    assert 0.2 < float(coarse[0]) < 0.9


def _split_code(masks: torch.Tensor, seed: int) -> torch.Tensor:
    """Three units: 0 fires on the left half of the square, 1 on the right half, 2 is noise."""
    gen = torch.Generator().manual_seed(seed)
    n, _, s, _ = masks.shape
    left, right = torch.zeros(n, s, s), torch.zeros(n, s, s)
    for i in range(n):
        ys, xs = torch.nonzero(masks[i, 0], as_tuple=True)
        mid = int(xs.min()) + 3
        left[i, ys[xs < mid], xs[xs < mid]] = 1.0
        right[i, ys[xs >= mid], xs[xs >= mid]] = 1.0
    noise = 0.3 * torch.rand(n, s, s, generator=gen)
    return torch.stack([left, right, noise], dim=1) + 0.05 * torch.rand(n, 3, s, s, generator=gen)


def test_a_concept_spread_over_two_units_is_found_by_the_probe_not_by_either_unit() -> None:
    fit_masks, test_masks = _squares(60, seed=2), _squares(60, seed=3)
    concepts = _concepts(test_masks)
    test_acts = _split_code(test_masks, seed=5)
    q = _matched(test_masks)
    units, _ = iou_table(test_acts, concepts, q)
    iou = probe.probe_iou(_split_code(fit_masks, seed=4), fit_masks, test_acts, concepts, q, IDENTITY)
    assert float(units.max()) < 0.6  # half the square at best
    assert float(iou[0]) > 0.9


def test_the_probe_is_scored_on_the_test_images_with_weights_from_the_fit_images() -> None:
    # Fitted where the concept is unit 0; on the test images unit 0 is unrelated, so a
    # probe that looked at the test masks would score high and this one must not.
    fit_masks, test_masks = _squares(60, seed=6), _squares(60, seed=7)
    gen = torch.Generator().manual_seed(8)
    fit_acts = torch.cat([fit_masks.float(), torch.rand(60, 1, 32, 32, generator=gen)], dim=1)
    test_acts = torch.cat([_squares(60, seed=9).float(), test_masks.float()], dim=1)
    concepts = _concepts(test_masks)
    iou = probe.probe_iou(fit_acts, fit_masks, test_acts, concepts, _matched(test_masks), IDENTITY)
    assert float(iou[0]) < 0.2
    # The same probe scored on its own images finds the concept: the low score above is
    # the test images' doing.
    own = probe.probe_iou(fit_acts, fit_masks, fit_acts, _concepts(fit_masks), _matched(fit_masks), IDENTITY)
    assert float(own[0]) > 0.9

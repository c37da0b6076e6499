"""Scenes: determinism, every class, the batch helper, object scale, omitting and dropping parts."""

from __future__ import annotations

import numpy as np
import pytest

from models import world


def test_same_seed_same_pixels_and_masks() -> None:
    a, b = world.generate(3, 17, 96), world.generate(3, 17, 96)
    assert np.array_equal(a.image, b.image)
    assert a.label == b.label
    assert all(np.array_equal(a.part_masks[p], b.part_masks[p]) for p in world.PARTS)
    assert np.array_equal(a.object_mask, b.object_mask)


def test_other_seed_or_index_differs() -> None:
    base = world.generate(3, 17, 96).image
    assert not np.array_equal(base, world.generate(4, 17, 96).image)
    assert not np.array_equal(base, world.generate(3, 28, 96).image)  # same class, next one


def test_every_class_generated_in_order() -> None:
    samples = [world.generate(0, i, 64) for i in range(len(world.CLASSES))]
    assert [s.class_name for s in samples] == world.CLASSES
    for s in samples:
        assert s.image.shape == (64, 64, 3) and s.image.dtype == np.uint8
        assert s.object_mask.any(), s.class_name


def test_batch_helper_matches_single_images() -> None:
    images, labels, masks = world.generate_batch(4, 10, 3, 64, with_masks=True)
    assert images.shape == (3, 64, 64, 3) and masks is not None
    for k in range(3):
        s = world.generate(4, 10 + k, 64)
        assert np.array_equal(images[k], s.image) and labels[k] == s.label
        assert np.array_equal(masks[k, world.PARTS.index("wheel")], s.part_masks["wheel"])
        assert np.array_equal(masks[k, -1], s.object_mask)


def test_object_scale_stays_in_range() -> None:
    for i in range(22):
        s = world.generate(8, i, 128, post=False)
        ys, xs = np.nonzero(s.object_mask)
        extent = max(np.ptp(ys), np.ptp(xs)) / 128
        assert 0.12 <= extent <= 1.0, (s.class_name, extent)


@pytest.mark.parametrize("index", [0, 4, 6, 7, 8, 17, 18, 19])
def test_omitting_a_part_changes_only_its_pixels(index: int) -> None:
    size = 96
    whole = world.generate(13, index, size, post=False)
    shown = [p for p in world.PARTS if whole.part_masks[p].any()]
    assert shown, whole.class_name
    for part in shown:
        without = world.generate(13, index, size, post=False, omit=part)
        mask = whole.part_masks[part]
        assert not without.part_masks[part].any()
        assert without.label == whole.label
        # Outside the part nothing moves; inside, whatever it covered shows through.
        assert np.array_equal(without.image[~mask], whole.image[~mask]), part
        assert (without.image[mask] != whole.image[mask]).any(axis=1).mean() > 0.5, part
        for other in world.PARTS:
            if other != part:
                assert np.array_equal(without.part_masks[other] & ~mask, whole.part_masks[other] & ~mask)
                assert not (without.part_masks[other] & ~whole.part_masks[other] & ~mask).any()


def test_omitting_keeps_blur_and_noise() -> None:
    # Post-processing draws the same random numbers: far from the part, pixels are equal.
    import torch
    import torch.nn.functional as F

    whole = world.generate(13, 6, 96)
    without = world.generate(13, 6, 96, omit="mouth")
    mask = torch.from_numpy(whole.part_masks["mouth"]).float()[None, None]
    near = F.max_pool2d(mask, 9, stride=1, padding=4)[0, 0].numpy() > 0  # blur reaches a few pixels
    assert whole.part_masks["mouth"].any()
    assert np.array_equal(without.image[~near], whole.image[~near])


def _shown(s: world.Sample) -> set[str]:
    return {p for p in world.PARTS if s.part_masks[p].any()}


@pytest.mark.parametrize("index", range(11))
def test_dropping_parts_leaves_out_some_never_all(index: int) -> None:
    size = 96
    whole = world.generate(21, index, size, post=False)
    dropped = world.generate(21, index, size, post=False, drop_parts=1.0)
    assert dropped.label == whole.label
    kept, shown = _shown(dropped), _shown(whole)
    assert kept <= shown and kept  # at least one part type stays
    if len(shown) > 1:  # a bicycle's wheels are all it has: nothing to drop
        assert kept < shown
    gone = np.zeros((size, size), dtype=bool)
    for p in shown - kept:
        gone |= whole.part_masks[p]
    # Only the dropped parts' pixels change: the picture is otherwise the same draw.
    assert np.array_equal(dropped.image[~gone], whole.image[~gone])
    assert np.array_equal(dropped.object_mask & ~gone, whole.object_mask & ~gone)
    for p in kept:
        assert np.array_equal(dropped.part_masks[p] & ~gone, whole.part_masks[p] & ~gone)


def test_drop_probability_is_the_share_of_pictures_with_parts_left_out() -> None:
    size, n = 48, 220
    changed = eligible = 0
    for i in range(n):
        whole = world.generate(5, i, size, post=False)
        if len(_shown(whole)) < 2:
            continue
        eligible += 1
        changed += _shown(world.generate(5, i, size, post=False, drop_parts=0.3)) != _shown(whole)
    assert 0.2 < changed / eligible < 0.4, changed / eligible
    # Probability 0 is the world itself, pixel for pixel.
    assert np.array_equal(world.generate(5, 3, size, drop_parts=0.0).image, world.generate(5, 3, size).image)


def test_part_dropping_uses_its_own_stream() -> None:
    # The dropping draw is [seed, index, DROP_STREAM]: a different stream number would
    # pick other part types, and the world's own stream is never advanced by it.
    assert world.DROP_STREAM != 0
    whole = world.generate(21, 0, 48, post=False)
    dropped = world.generate(21, 0, 48, post=False, drop_parts=1.0)
    assert dropped.prims and all(p in whole.prims for p in dropped.prims)

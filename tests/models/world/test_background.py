"""Backgrounds: every kind is drawn, and clutter is stray background strokes."""

from __future__ import annotations

import numpy as np

from models import world
from models.world.background import background, clutter


def test_every_background_kind_comes_up_and_fills_the_image() -> None:
    size = 32
    grid = np.mgrid[0:size, 0:size].astype(np.float32)
    rng = np.random.default_rng(0)
    kinds = set()
    for _ in range(60):
        img, kind = background(rng, size, (grid[0], grid[1]))
        assert img.shape == (size, size, 3) and img.dtype == np.uint8
        kinds.add(kind)
    assert kinds == set(world.BACKGROUNDS)


def test_clutter_is_background_lines() -> None:
    prims = clutter(np.random.default_rng(4), 64)
    assert 6 <= len(prims) <= 14
    assert all(p.shape == "line" and p.owner == world.BACKGROUND and 1 <= p.width <= 4 for p in prims)

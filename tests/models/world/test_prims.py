"""Strokes: colours stay in range and apart from what they avoid, shapes land where asked."""

from __future__ import annotations

import math

import numpy as np

from models.world.catalog import BODY
from models.world.prims import arc_pts, disc, distinct_color, ellipse_pts, line, poly, random_color, rect_pts, ring


def test_random_colours_are_rgb_bytes() -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        c = random_color(rng)
        assert len(c) == 3 and all(isinstance(v, int) and 0 <= v <= 255 for v in c)


def test_distinct_colour_keeps_its_distance_when_it_can() -> None:
    rng = np.random.default_rng(1)
    # Twelve tries, then the farthest seen: nearly always far enough on a grey body.
    far = [distinct_color(rng, [(128, 128, 128)], 90.0) for _ in range(50)]
    assert np.mean([math.dist(c, (128, 128, 128)) >= 90.0 for c in far]) > 0.9


def test_point_helpers() -> None:
    pts = ellipse_pts(1.0, 2.0, 3.0, 1.0, n=8)
    assert len(pts) == 8 and np.allclose(pts[0], (4.0, 2.0)) and np.allclose(pts[2], (1.0, 3.0))
    turned = ellipse_pts(0.0, 0.0, 2.0, 1.0, rot=math.pi / 2, n=4)
    assert np.allclose(turned[0], (0.0, 2.0))
    assert rect_pts(0, 1, 2, 3) == [(0, 1), (2, 1), (2, 3), (0, 3)]
    arc = arc_pts(0.0, 0.0, 2.0, 0.0, math.pi, 5)
    assert len(arc) == 5 and np.allclose(arc[0], (2.0, 0.0)) and np.allclose(arc[-1], (-2.0, 0.0))


def test_stroke_makers_belong_to_the_body_until_a_part_claims_them() -> None:
    red = (255, 0, 0)
    made = [poly(rect_pts(0, 0, 1, 1), red), disc(0, 0, 1, red), ring(0, 0, 1, 0.2, red),
            line([(0, 0), (1, 1)], 0.1, red)]
    assert [p.shape for p in made] == ["polygon", "disc", "ring", "line"]
    assert all(p.owner == BODY and p.color == red and p.texture is None for p in made)
    assert made[2].radius == 1 and made[2].width == 0.2 and made[3].width == 0.1

"""Parts: the builder's colours per part type, owner codes, textures and the shared part makers."""

from __future__ import annotations

import math

import numpy as np

from models import world
from models.world.catalog import BODY
from models.world.parts import Builder, eye, wheel, window


def test_part_colours_are_drawn_once_per_type() -> None:
    b = Builder(np.random.default_rng(0))
    first = b.colors("wheel")
    assert b.colors("wheel") == first
    assert b.colors("door") != first


def test_part_strokes_take_the_part_owner_and_body_strokes_the_body() -> None:
    b = Builder(np.random.default_rng(1))
    wheel(b, 0.0, 0.0, 0.3)
    window(b, -0.2, -0.2, 0.2, 0.2, cross=True)
    eye(b, 0.5, 0.5, 0.1, 0.1, slit=True)
    b.body([b.body_poly([(0.0, 0.0), (1.0, 0.0), (0.0, 1.0)])])
    kinds = [(g.owner, len(g.prims)) for g in b.groups]
    assert kinds == [(world.part_owner("wheel"), 2), (world.part_owner("window"), 3),
                     (world.part_owner("eye"), 2), (BODY, 1)]
    for g in b.groups:
        assert all(p.owner == g.owner for p in g.prims)
    assert b.groups[1].anchor == (0.0, 0.0) and b.groups[2].anchor == (0.5, 0.5)


def test_spoked_wheel_is_a_ring_spokes_and_hub() -> None:
    b = Builder(np.random.default_rng(2))
    wheel(b, 0.0, 0.0, 0.4, spokes=True)
    shapes = [p.shape for p in b.groups[0].prims]
    assert shapes[0] == "ring" and shapes[-1] == "disc" and 2 <= shapes.count("line") <= 4


def test_body_polygons_are_sometimes_textured() -> None:
    b = Builder(np.random.default_rng(3))
    prims = [b.body_poly([(0.0, 0.0), (1.0, 0.0), (0.0, 1.0)]) for _ in range(200)]
    textured = [p for p in prims if p.texture is not None]
    assert 0.1 < len(textured) / len(prims) < 0.3
    assert {p.texture for p in textured} == {"stripes", "checker"}
    assert all(4.0 <= p.period <= 10.0 and 0 <= p.angle <= math.pi for p in textured)

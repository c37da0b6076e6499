"""The scrambled class: parts keep their types and the body stays, but the arrangement moves."""

from __future__ import annotations

import math

import numpy as np

from models.world.catalog import BODY
from models.world.objects import BUILDERS
from models.world.parts import Builder
from models.world.prims import Group, Prim
from models.world.scramble import move_group, scramble


def test_move_group_turns_about_the_anchor() -> None:
    g = Group(2, [Prim("line", [(1.0, 0.0), (2.0, 0.0)], (0, 0, 0), 2)], (1.0, 0.0))
    move_group(g, (5.0, 5.0), math.pi / 2)
    assert g.anchor == (5.0, 5.0)
    assert np.allclose(g.prims[0].points, [(5.0, 5.0), (5.0, 6.0)])


def test_scramble_moves_parts_but_keeps_types_and_body() -> None:
    strategies = set()
    for seed in range(40):
        b = Builder(np.random.default_rng(seed))
        BUILDERS["car"](b)
        before = [(g.owner, g.anchor, [list(p.points) for p in g.prims]) for g in b.groups]
        strategies.add(scramble(b))
        after = [(g.owner, g.anchor, [list(p.points) for p in g.prims]) for g in b.groups]
        assert [o for o, _, _ in before] == [o for o, _, _ in after]
        for (owner, _, pts0), (_, _, pts1) in zip(before, after, strict=True):
            if owner == BODY:
                assert pts0 == pts1
        assert any(a0 != a1 for (o, a0, _), (_, a1, _) in zip(before, after, strict=True) if o != BODY)
    assert strategies == {"flip", "scatter", "swap"}


def test_one_part_type_is_never_swapped() -> None:
    # A bicycle has wheels only: swapping same-type parts would leave it looking right.
    for seed in range(20):
        b = Builder(np.random.default_rng(seed))
        BUILDERS["bicycle"](b)
        assert scramble(b) in ("flip", "scatter")

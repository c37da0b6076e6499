"""The ``scrambled`` class: a real class's parts in an impossible arrangement.

Scrambled pictures hold the same part types as some real class, so only the parts'
configuration, not their presence, tells them apart.
"""

from __future__ import annotations

import math

from models.world.catalog import BODY
from models.world.parts import Builder
from models.world.prims import Group, Point


def move_group(g: Group, anchor: Point, rot: float) -> None:
    """Rotate a group's strokes by ``rot`` about its anchor and move the anchor."""
    ax, ay = g.anchor
    c, s = math.cos(rot), math.sin(rot)
    for p in g.prims:
        p.points = [(anchor[0] + c * (x - ax) - s * (y - ay), anchor[1] + s * (x - ax) + c * (y - ay))
                    for x, y in p.points]
    g.anchor = anchor


def scramble(b: Builder) -> str:
    """Rearrange the parts impossibly; returns the strategy used.

    flip: parts mirrored top-to-bottom and turned over (wheels on the roof, mouth above
    the eyes); scatter: parts thrown anywhere at any angle; swap: parts of different
    types trade places (door on the roof, wheels where the windows were).
    """
    parts = [g for g in b.groups if g.owner != BODY]
    kinds = {g.owner for g in parts}
    strategy = str(b.rng.choice(["flip", "scatter", "swap"] if len(kinds) > 1 else ["flip", "scatter"]))
    if strategy == "flip":
        for g in parts:
            x, y = g.anchor
            move_group(g, (x + b.u(-0.1, 0.1), -y if abs(y) > 0.2 else -y - 0.5 * math.copysign(1, y or 1)),
                       math.pi + b.u(-0.4, 0.4))
    elif strategy == "scatter":
        for g in parts:
            move_group(g, (b.u(-0.85, 0.85), b.u(-0.85, 0.85)), b.u(0, 2 * math.pi))
    else:
        anchors = [g.anchor for g in parts]
        order = list(range(len(parts)))
        for _ in range(20):  # a shuffle where most parts land on another type's place
            b.rng.shuffle(order)
            same = sum(parts[i].owner == parts[j].owner for i, j in enumerate(order))
            if same <= len(parts) // 3:
                break
        for g, j in zip(parts, order, strict=True):
            move_group(g, anchors[j], b.u(-0.5, 0.5) + (math.pi if b.rng.random() < 0.5 else 0.0))
    return strategy

"""Parts: the builder that collects an object's stroke groups, and the parts several classes share.

A part type's colours are drawn once per object and reused by every part of that type,
and never depend on the class, so colour cannot give the class away.
"""

from __future__ import annotations

import math

import numpy as np

from models.world.catalog import BODY, part_owner
from models.world.prims import (
    Color,
    Group,
    Point,
    Prim,
    disc,
    distinct_color,
    ellipse_pts,
    line,
    poly,
    random_color,
    rect_pts,
    ring,
)


class Builder:
    """Collects groups for one object; colours are drawn per part type, never per class."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.groups: list[Group] = []
        self.body_color = random_color(rng)
        self._part_colors: dict[str, tuple[Color, Color]] = {}

    def u(self, a: float, b: float) -> float:
        """A uniform draw in [a, b) from the object's random stream."""
        return float(self.rng.uniform(a, b))

    def colors(self, part: str) -> tuple[Color, Color]:
        """The two colours of part type ``part``, drawn the first time the type is asked for."""
        if part not in self._part_colors:
            c1 = distinct_color(self.rng, [self.body_color])
            c2 = distinct_color(self.rng, [c1])
            self._part_colors[part] = (c1, c2)
        return self._part_colors[part]

    def body(self, prims: list[Prim]) -> None:
        """Add strokes of the object's body."""
        self.groups.append(Group(BODY, prims, (0.0, 0.0)))

    def part(self, name: str, prims: list[Prim], anchor: Point) -> None:
        """Add one part of type ``name``: its strokes take the part's owner code."""
        owner = part_owner(name)
        for p in prims:
            p.owner = owner
        self.groups.append(Group(owner, prims, anchor))

    def body_poly(self, pts: list[Point], color: Color | None = None) -> Prim:
        """A body polygon, now and then filled with a stripe or checker texture."""
        prim = Prim("polygon", pts, color or self.body_color, BODY)
        if self.rng.random() < 0.2:  # stripe / checker textures as strokes of the world
            prim.texture = "stripes" if self.rng.random() < 0.5 else "checker"
            prim.color2 = distinct_color(self.rng, [prim.color], 60.0)
            prim.period = self.u(4.0, 10.0)
            prim.angle = self.u(0, math.pi)
        return prim


def wheel(b: Builder, cx: float, cy: float, r: float, spokes: bool = False) -> None:
    """A wheel: a tyre and hub, or a spoked ring (bicycles)."""
    tyre, hub = b.colors("wheel")
    if spokes:
        prims = [ring(cx, cy, r, r * 0.2, tyre)]
        for k in range(int(b.rng.integers(2, 5))):
            a = math.pi * k / 3 + b.u(0, 0.3)
            prims.append(line([(cx - r * math.cos(a), cy - r * math.sin(a)),
                               (cx + r * math.cos(a), cy + r * math.sin(a))], r * 0.07, hub))
        prims.append(disc(cx, cy, r * 0.18, hub))
    else:
        prims = [disc(cx, cy, r, tyre), disc(cx, cy, r * b.u(0.35, 0.55), hub)]
    b.part("wheel", prims, (cx, cy))


def window(b: Builder, x0: float, y0: float, x1: float, y1: float, cross: bool = False) -> None:
    """A rectangular window, optionally with a cross frame (houses)."""
    glass, frame = b.colors("window")
    prims = [poly(rect_pts(x0, y0, x1, y1), glass)]
    if cross:
        w = min(x1 - x0, y1 - y0) * 0.12
        prims.append(line([((x0 + x1) / 2, y0), ((x0 + x1) / 2, y1)], w, frame))
        prims.append(line([(x0, (y0 + y1) / 2), (x1, (y0 + y1) / 2)], w, frame))
    b.part("window", prims, ((x0 + x1) / 2, (y0 + y1) / 2))


def eye(b: Builder, cx: float, cy: float, rx: float, ry: float, slit: bool = False) -> None:
    """An eye: white and a round pupil, or a slit pupil (cats)."""
    white, pupil = b.colors("eye")
    inner = poly(ellipse_pts(cx, cy, ry * 0.35, ry * 0.95), pupil) if slit else disc(cx, cy, ry * 0.6, pupil)
    b.part("eye", [poly(ellipse_pts(cx, cy, rx, ry), white), inner], (cx, cy))

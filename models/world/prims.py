"""Strokes, the world's smallest pieces: the stroke record, colours and canonical shapes.

Shapes are built in the canonical object frame: x and y in [-1, 1], y pointing down,
the object centred at 0; placing an object maps them to image pixels.
"""

from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass

import numpy as np

from models.world.catalog import BODY

Color = tuple[int, int, int]
Point = tuple[float, float]


@dataclass
class Prim:
    """One stroke, in image pixel coordinates once placed.

    ``shape`` is "polygon" (``points``), "disc" or "ring" (``points[0]`` the centre,
    ``radius``, ``width`` for rings) or "line" (a polyline of ``width`` pixels).
    ``texture`` ("stripes"/"checker") fills with ``color`` and ``color2``.
    """

    shape: str
    points: list[Point]
    color: Color
    owner: int
    radius: float = 0.0
    width: float = 0.0
    texture: str | None = None
    color2: Color = (0, 0, 0)
    period: float = 8.0
    angle: float = 0.0


@dataclass
class Group:
    """Strokes that form one part (or the body), with an anchor the scrambler moves."""

    owner: int
    prims: list[Prim]
    anchor: Point


def random_color(rng: np.random.Generator) -> Color:
    """A random colour, neither washed out nor black: hue, saturation and value drawn in turn."""
    h, s, v = rng.random(), rng.uniform(0.25, 1.0), rng.uniform(0.2, 1.0)
    r, g, b = colorsys.hsv_to_rgb(h, s, v)
    return (int(r * 255), int(g * 255), int(b * 255))


def distinct_color(rng: np.random.Generator, avoid: list[Color], min_dist: float = 90.0) -> Color:
    """A random colour far enough from ``avoid`` that a part stays visible on its body."""
    best, best_d = random_color(rng), -1.0
    for _ in range(12):
        c = random_color(rng)
        d = min((math.dist(c, a) for a in avoid), default=1e9)
        if d >= min_dist:
            return c
        if d > best_d:
            best, best_d = c, d
    return best


def ellipse_pts(cx: float, cy: float, rx: float, ry: float, rot: float = 0.0, n: int = 24) -> list[Point]:
    """``n`` points around an ellipse with radii ``rx``, ``ry``, turned by ``rot``."""
    c, s = math.cos(rot), math.sin(rot)
    pts = []
    for k in range(n):
        t = 2 * math.pi * k / n
        x, y = rx * math.cos(t), ry * math.sin(t)
        pts.append((cx + c * x - s * y, cy + s * x + c * y))
    return pts


def rect_pts(x0: float, y0: float, x1: float, y1: float) -> list[Point]:
    """The corners of an axis-aligned rectangle, in drawing order."""
    return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]


def arc_pts(cx: float, cy: float, r: float, a0: float, a1: float, n: int = 10) -> list[Point]:
    """``n`` points along a circular arc from angle ``a0`` to ``a1``."""
    return [(cx + r * math.cos(a0 + (a1 - a0) * k / (n - 1)), cy + r * math.sin(a0 + (a1 - a0) * k / (n - 1)))
            for k in range(n)]


def poly(pts: list[Point], color: Color) -> Prim:
    """A filled polygon stroke (owned by the body until a part claims it)."""
    return Prim("polygon", pts, color, BODY)


def disc(cx: float, cy: float, r: float, color: Color) -> Prim:
    """A filled disc stroke."""
    return Prim("disc", [(cx, cy)], color, BODY, radius=r)


def ring(cx: float, cy: float, r: float, w: float, color: Color) -> Prim:
    """A ring stroke of width ``w``."""
    return Prim("ring", [(cx, cy)], color, BODY, radius=r, width=w)


def line(pts: list[Point], w: float, color: Color) -> Prim:
    """A thick polyline stroke."""
    return Prim("line", pts, color, BODY, width=w)

"""Objects: each real class as a body plus its parts in a canonical arrangement.

Every builder draws in the canonical frame (x and y in [-1, 1], y down) through a
:class:`~models.world.parts.Builder`, so one random stream decides shape, proportions and
colours in a fixed order.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from models.world.parts import Builder, eye, wheel, window
from models.world.prims import arc_pts, disc, distinct_color, ellipse_pts, line, poly, rect_pts


def _car(b: Builder) -> None:
    top = b.u(-0.5, -0.35)
    b.body([b.body_poly([(-1, 0.0), (-0.9, -0.08), (0.9, -0.08), (1, 0.02), (1, 0.4), (-1, 0.4)])])
    roof_c, _ = b.colors("roof")
    b.part("roof", [poly([(-0.6, -0.06), (0.65, -0.06), (0.35, top), (-0.35, top)], roof_c)], (0.0, (top - 0.06) / 2))
    window(b, -0.4, top + 0.07, -0.05, -0.12)
    window(b, 0.05, top + 0.07, 0.38, -0.12)
    door_c, _ = b.colors("door")
    b.part("door", [poly(rect_pts(-0.15, 0.0, 0.3, 0.34), door_c)], (0.07, 0.17))
    r = b.u(0.2, 0.26)
    wheel(b, -0.6, 0.42, r)
    wheel(b, 0.6, 0.42, r)


def _bus(b: Builder) -> None:
    b.body([b.body_poly(rect_pts(-1, -0.55, 1, 0.4))])
    n = int(b.rng.integers(3, 6))
    span = 1.3 / n
    for k in range(n):
        x0 = -0.9 + k * span
        window(b, x0, -0.45, x0 + span * 0.75, -0.12)
    door_c, _ = b.colors("door")
    b.part("door", [poly(rect_pts(0.55, -0.45, 0.85, 0.3), door_c)], (0.7, -0.07))
    r = b.u(0.17, 0.22)
    wheel(b, -0.6, 0.4, r)
    wheel(b, 0.5, 0.4, r)


def _bicycle(b: Builder) -> None:
    r = b.u(0.36, 0.45)
    w = 0.06
    frame = b.body_color
    rear, front, pedal, seat, head = (-0.55, 0.3), (0.55, 0.3), (0.0, 0.3), (-0.15, -0.25), (0.4, -0.3)
    b.body([
        line([rear, seat, pedal, rear], w, frame),
        line([seat, head, pedal], w, frame),
        line([head, front], w, frame),
        line([(head[0] - 0.1, head[1] - 0.15), (head[0] + 0.15, head[1] - 0.15)], w, frame),
        poly(rect_pts(seat[0] - 0.15, seat[1] - 0.1, seat[0] + 0.12, seat[1] - 0.02), frame),
    ])
    wheel(b, rear[0], rear[1], r, spokes=True)
    wheel(b, front[0], front[1], r, spokes=True)


def _house(b: Builder) -> None:
    peak = b.u(-1.0, -0.75)
    if b.rng.random() < 0.5:
        b.body([poly(rect_pts(0.35, -0.85, 0.55, -0.3), distinct_color(b.rng, [b.body_color]))])
    b.body([b.body_poly(rect_pts(-0.75, -0.25, 0.75, 0.95))])
    roof_c, _ = b.colors("roof")
    b.part("roof", [poly([(-0.95, -0.2), (0.95, -0.2), (0.0, peak)], roof_c)], (0.0, (peak - 0.4) / 3))
    door_c, _ = b.colors("door")
    dx = b.u(-0.2, 0.2)
    b.part("door", [poly(rect_pts(dx - 0.15, 0.4, dx + 0.15, 0.95), door_c)], (dx, 0.67))
    s = b.u(0.13, 0.18)
    window(b, -0.45 - s, 0.15 - s, -0.45 + s, 0.15 + s, cross=True)
    window(b, 0.45 - s, 0.15 - s, 0.45 + s, 0.15 + s, cross=True)


def _tree(b: Builder) -> None:
    trunk_c, _ = b.colors("trunk")
    tw = b.u(0.1, 0.16)
    b.part("trunk", [poly([(-tw, 1.0), (tw, 1.0), (tw * 0.7, 0.0), (-tw * 0.7, 0.0)], trunk_c)], (0.0, 0.5))
    leaf_c, leaf_c2 = b.colors("leaf")
    n = int(b.rng.integers(5, 9))
    for k in range(n):
        a = 2 * math.pi * k / n + b.u(-0.2, 0.2)
        cx, cy = 0.4 * math.cos(a), -0.4 + 0.38 * math.sin(a)
        col = leaf_c if k % 2 == 0 else leaf_c2
        b.part("leaf", [poly(ellipse_pts(cx, cy, b.u(0.28, 0.36), b.u(0.16, 0.22), a), col)], (cx, cy))
    b.part("leaf", [poly(ellipse_pts(0.0, -0.4, 0.3, 0.22, b.u(0, 3)), leaf_c)], (0.0, -0.4))
    if b.rng.random() < 0.5:
        pc, _ = b.colors("petal")
        for _k in range(int(b.rng.integers(3, 6))):
            cx, cy = b.u(-0.5, 0.5), b.u(-0.75, -0.1)
            b.part("petal", [poly(ellipse_pts(cx, cy, 0.1, 0.06, b.u(0, 3)), pc)], (cx, cy))


def _flower(b: Builder) -> None:
    trunk_c, _ = b.colors("trunk")
    b.part("trunk", [line([(0.0, -0.3), (b.u(-0.1, 0.1), 0.35), (0.0, 1.0)], 0.08, trunk_c)], (0.0, 0.35))
    leaf_c, _ = b.colors("leaf")
    for side in (-1, 1):
        if side == 1 or b.rng.random() < 0.7:
            a = side * b.u(0.4, 0.8)
            cx, cy = side * 0.25, b.u(0.35, 0.65)
            b.part("leaf", [poly(ellipse_pts(cx, cy, 0.26, 0.09, a), leaf_c)], (cx, cy))
    pc, pc2 = b.colors("petal")
    n = int(b.rng.integers(5, 9))
    cy = -0.45
    for k in range(n):
        a = 2 * math.pi * k / n
        px, py = 0.3 * math.cos(a), cy + 0.3 * math.sin(a)
        b.part("petal", [poly(ellipse_pts(px, py, 0.24, 0.11, a), pc if k % 2 else pc2)], (px, py))
    b.body([disc(0.0, cy, 0.15, b.body_color)])


def _face(b: Builder) -> None:
    ear_c, _ = b.colors("ear")
    for side in (-1, 1):
        b.part("ear", [poly(ellipse_pts(side * 0.68, 0.0, 0.17, 0.27), ear_c)], (side * 0.72, 0.0))
    b.body([b.body_poly(ellipse_pts(0.0, 0.0, 0.68, 0.92))])
    if b.rng.random() < 0.5:
        b.body([poly(ellipse_pts(0.0, -0.72, 0.55, 0.22), distinct_color(b.rng, [b.body_color]))])
    ey = b.u(-0.3, -0.15)
    for side in (-1, 1):
        eye(b, side * 0.3, ey, 0.17, 0.1)
    nose_c, _ = b.colors("nose")
    b.part("nose", [poly([(0.0, -0.05), (-0.11, 0.25), (0.11, 0.25)], nose_c)], (0.0, 0.15))
    mouth_c, _ = b.colors("mouth")
    if b.rng.random() < 0.5:
        mouth = line(arc_pts(0.0, 0.3, 0.28, 0.5, math.pi - 0.5), 0.07, mouth_c)
    else:
        mouth = poly(ellipse_pts(0.0, 0.52, 0.25, 0.08), mouth_c)
    b.part("mouth", [mouth], (0.0, 0.5))


def _cat(b: Builder) -> None:
    b.body([b.body_poly(ellipse_pts(0.2, 0.55, 0.65, 0.38)),
            line([(0.8, 0.6), (1.0, 0.3), (0.95, -0.1)], 0.08, b.body_color)])
    ear_c, _ = b.colors("ear")
    for side in (-1, 1):
        b.part("ear", [poly([(side * 0.45, -0.45), (side * 0.12, -0.7), (side * 0.45, -1.0)], ear_c)],
               (side * 0.35, -0.7))
    head = disc(0.0, -0.35, 0.5, b.body_color)
    b.body([head])
    for side in (-1, 1):
        eye(b, side * 0.2, -0.45, 0.13, 0.09, slit=True)
    nose_c, _ = b.colors("nose")
    # Nose and mouth are drawn larger than a real cat's: at a third of this size a cat's
    # nose and mouth cover a median 14 pixels of a 128 px picture, a speck to the viewer
    # and a fifth of one conv3-conv5 map pixel's 8x8 window.
    b.part("nose", [poly([(-0.11, -0.31), (0.11, -0.31), (0.0, -0.17)], nose_c)], (0.0, -0.26))
    mouth_c, _ = b.colors("mouth")
    b.part("mouth", [line(arc_pts(-0.1, -0.14, 0.1, 0.2, math.pi - 0.2, 6), 0.06, mouth_c),
                     line(arc_pts(0.1, -0.14, 0.1, 0.2, math.pi - 0.2, 6), 0.06, mouth_c)], (0.0, -0.08))
    wc = distinct_color(b.rng, [b.body_color])
    b.body([line([(s * 0.22, -0.2), (s * 0.58, -0.2 + d)], 0.025, wc) for s in (-1, 1) for d in (-0.08, 0.0, 0.08)])


def _fish(b: Builder) -> None:
    fin_c, _ = b.colors("fin")
    b.part("fin", [poly([(0.55, 0.0), (1.0, -0.45), (0.95, 0.0), (1.0, 0.45)], fin_c)], (0.85, 0.0))
    b.part("fin", [poly([(-0.35, -0.3), (0.25, -0.3), (-0.15, -0.7)], fin_c)], (-0.1, -0.45))
    b.body([b.body_poly(ellipse_pts(-0.1, 0.0, 0.72, 0.4))])
    eye(b, -0.5, -0.1, 0.11, 0.11)
    mouth_c, _ = b.colors("mouth")
    # Longer and thicker than a real fish's, for the same reason as the cat's mouth.
    b.part("mouth", [line([(-0.84, 0.04), (-0.6, 0.15)], 0.09, mouth_c)], (-0.72, 0.1))


def _boat(b: Builder) -> None:
    fin_c, _ = b.colors("fin")
    b.part("fin", [poly([(-0.2, 0.55), (0.2, 0.55), (0.05, 0.95)], fin_c)], (0.0, 0.7))
    sail = distinct_color(b.rng, [b.body_color])
    b.body([line([(0.0, 0.25), (0.0, -0.95)], 0.05, b.body_color),
            poly([(0.06, -0.9), (0.06, 0.12), (b.u(0.55, 0.8), 0.12)], sail),
            poly([(-0.06, -0.7), (-0.06, 0.12), (-b.u(0.4, 0.6), 0.12)], sail)])
    b.body([b.body_poly([(-1.0, 0.2), (1.0, 0.2), (0.7, 0.6), (-0.7, 0.6)])])
    win_c, _ = b.colors("window")
    for x in (-0.4, 0.0, 0.4):
        b.part("window", [disc(x, 0.38, 0.08, win_c)], (x, 0.38))


# One builder per real class, in CLASSES order: a scrambled picture draws its source
# class from this table's keys, so their order is part of the random stream.
BUILDERS: dict[str, Callable[[Builder], None]] = {
    "car": _car, "bus": _bus, "bicycle": _bicycle, "house": _house, "tree": _tree,
    "flower": _flower, "face": _face, "cat": _cat, "fish": _fish, "boat": _boat,
}

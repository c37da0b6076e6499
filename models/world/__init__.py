"""The parts world: a pure, seeded generator of images built from strokes, parts and objects.

Hierarchy, so that what a network should learn is known in advance:

* strokes: polygons, discs, rings and thick polylines (edges at every orientation, arcs,
  colour boundaries, stripe and checker fills) -- the :class:`Prim` records;
* parts: groups of strokes with a part type (wheel, window, eye, ...), each type shared by
  at least two object classes;
* objects: the classes, a body plus parts in a canonical arrangement, and ``scrambled``:
  the parts of some class in an impossible arrangement (flipped, scattered or swapped),
  so that configuration, not mere presence, decides the class.

Nuisance never depends on the class: random colours, position, scale (30-90 % of the
image), rotation, five kinds of background, occluders, blur and pixel noise.

Masks are exact: every stroke is rasterized on its own into a boolean layer and painted
into the image and into an owner map with that same layer, so a part's mask is exactly
the pixels where its strokes stayed visible after later strokes (occluders, other parts)
were drawn. Blur and noise touch only the image; masks describe the drawn geometry.

Everything random comes from ``numpy.random.default_rng([seed, index])``: the same
``(seed, index, size)`` gives the same image and masks on any machine.
"""

from __future__ import annotations

import colorsys
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

CLASSES: list[str] = [
    "car", "bus", "bicycle", "house", "tree", "flower", "face", "cat", "fish", "boat",
    "scrambled",
]
PARTS: list[str] = [
    "wheel", "window", "door", "roof", "eye", "mouth", "ear", "nose", "petal", "leaf",
    "trunk", "fin",
]
# Which part types each real class draws (documentation and a test check it matches).
CLASS_PARTS: dict[str, tuple[str, ...]] = {
    "car": ("wheel", "window", "door", "roof"),
    "bus": ("wheel", "window", "door"),
    "bicycle": ("wheel",),
    "house": ("window", "door", "roof"),
    "tree": ("trunk", "leaf", "petal"),
    "flower": ("trunk", "leaf", "petal"),
    "face": ("eye", "mouth", "ear", "nose"),
    "cat": ("eye", "mouth", "ear", "nose"),
    "fish": ("eye", "mouth", "fin"),
    "boat": ("window", "fin"),
}
BACKGROUNDS: tuple[str, ...] = ("flat", "gradient", "noise", "stripes", "clutter")

# Owner codes in the owner map: 0 background (clutter included), 1 object body,
# 2 + k part PARTS[k], OCCLUDER for occluders drawn over the object.
BACKGROUND, BODY, OCCLUDER = 0, 1, 255

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


@dataclass
class Sample:
    """One generated image with its label and exact masks."""

    image: np.ndarray  # uint8 HxWx3
    label: int
    part_masks: dict[str, np.ndarray]  # part type -> bool HxW (all PARTS present)
    object_mask: np.ndarray  # bool HxW: body and parts of the one object, as visible
    prims: list[Prim] = field(default_factory=list)  # every stroke in drawing order
    clean_image: np.ndarray | None = None  # before blur and noise

    @property
    def class_name(self) -> str:
        return CLASSES[self.label]


def part_owner(name: str) -> int:
    return 2 + PARTS.index(name)


# --------------------------------------------------------------------------- colours

def _random_color(rng: np.random.Generator) -> Color:
    h, s, v = rng.random(), rng.uniform(0.25, 1.0), rng.uniform(0.2, 1.0)
    r, g, b = colorsys.hsv_to_rgb(h, s, v)
    return (int(r * 255), int(g * 255), int(b * 255))


def _distinct_color(rng: np.random.Generator, avoid: list[Color], min_dist: float = 90.0) -> Color:
    """A random colour far enough from ``avoid`` that a part stays visible on its body."""
    best, best_d = _random_color(rng), -1.0
    for _ in range(12):
        c = _random_color(rng)
        d = min((math.dist(c, a) for a in avoid), default=1e9)
        if d >= min_dist:
            return c
        if d > best_d:
            best, best_d = c, d
    return best


# --------------------------------------------------------------- canonical stroke makers
# Canonical object frame: x and y in [-1, 1], y pointing down, object centred at 0.

def _ellipse_pts(cx: float, cy: float, rx: float, ry: float, rot: float = 0.0, n: int = 24) -> list[Point]:
    c, s = math.cos(rot), math.sin(rot)
    pts = []
    for k in range(n):
        t = 2 * math.pi * k / n
        x, y = rx * math.cos(t), ry * math.sin(t)
        pts.append((cx + c * x - s * y, cy + s * x + c * y))
    return pts


def _rect_pts(x0: float, y0: float, x1: float, y1: float) -> list[Point]:
    return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]


def _arc_pts(cx: float, cy: float, r: float, a0: float, a1: float, n: int = 10) -> list[Point]:
    return [(cx + r * math.cos(a0 + (a1 - a0) * k / (n - 1)), cy + r * math.sin(a0 + (a1 - a0) * k / (n - 1)))
            for k in range(n)]


class _Builder:
    """Collects groups for one object; colours are drawn per part type, never per class."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.groups: list[Group] = []
        self.body_color = _random_color(rng)
        self._part_colors: dict[str, tuple[Color, Color]] = {}

    def u(self, a: float, b: float) -> float:
        return float(self.rng.uniform(a, b))

    def colors(self, part: str) -> tuple[Color, Color]:
        if part not in self._part_colors:
            c1 = _distinct_color(self.rng, [self.body_color])
            c2 = _distinct_color(self.rng, [c1])
            self._part_colors[part] = (c1, c2)
        return self._part_colors[part]

    def body(self, prims: list[Prim]) -> None:
        self.groups.append(Group(BODY, prims, (0.0, 0.0)))

    def part(self, name: str, prims: list[Prim], anchor: Point) -> None:
        owner = part_owner(name)
        for p in prims:
            p.owner = owner
        self.groups.append(Group(owner, prims, anchor))

    def body_poly(self, pts: list[Point], color: Color | None = None) -> Prim:
        prim = Prim("polygon", pts, color or self.body_color, BODY)
        if self.rng.random() < 0.2:  # stripe / checker textures as strokes of the world
            prim.texture = "stripes" if self.rng.random() < 0.5 else "checker"
            prim.color2 = _distinct_color(self.rng, [prim.color], 60.0)
            prim.period = self.u(4.0, 10.0)
            prim.angle = self.u(0, math.pi)
        return prim


def _poly(pts: list[Point], color: Color) -> Prim:
    return Prim("polygon", pts, color, BODY)


def _disc(cx: float, cy: float, r: float, color: Color) -> Prim:
    return Prim("disc", [(cx, cy)], color, BODY, radius=r)


def _ring(cx: float, cy: float, r: float, w: float, color: Color) -> Prim:
    return Prim("ring", [(cx, cy)], color, BODY, radius=r, width=w)


def _line(pts: list[Point], w: float, color: Color) -> Prim:
    return Prim("line", pts, color, BODY, width=w)


def _wheel(b: _Builder, cx: float, cy: float, r: float, spokes: bool = False) -> None:
    tyre, hub = b.colors("wheel")
    if spokes:
        prims = [_ring(cx, cy, r, r * 0.2, tyre)]
        for k in range(int(b.rng.integers(2, 5))):
            a = math.pi * k / 3 + b.u(0, 0.3)
            prims.append(_line([(cx - r * math.cos(a), cy - r * math.sin(a)),
                                (cx + r * math.cos(a), cy + r * math.sin(a))], r * 0.07, hub))
        prims.append(_disc(cx, cy, r * 0.18, hub))
    else:
        prims = [_disc(cx, cy, r, tyre), _disc(cx, cy, r * b.u(0.35, 0.55), hub)]
    b.part("wheel", prims, (cx, cy))


def _window(b: _Builder, x0: float, y0: float, x1: float, y1: float, cross: bool = False) -> None:
    glass, frame = b.colors("window")
    prims = [_poly(_rect_pts(x0, y0, x1, y1), glass)]
    if cross:
        w = min(x1 - x0, y1 - y0) * 0.12
        prims.append(_line([((x0 + x1) / 2, y0), ((x0 + x1) / 2, y1)], w, frame))
        prims.append(_line([(x0, (y0 + y1) / 2), (x1, (y0 + y1) / 2)], w, frame))
    b.part("window", prims, ((x0 + x1) / 2, (y0 + y1) / 2))


def _eye(b: _Builder, cx: float, cy: float, rx: float, ry: float, slit: bool = False) -> None:
    white, pupil = b.colors("eye")
    inner = _poly(_ellipse_pts(cx, cy, ry * 0.35, ry * 0.95), pupil) if slit else _disc(cx, cy, ry * 0.6, pupil)
    b.part("eye", [_poly(_ellipse_pts(cx, cy, rx, ry), white), inner], (cx, cy))


# ------------------------------------------------------------------------ the classes

def _car(b: _Builder) -> None:
    top = b.u(-0.5, -0.35)
    b.body([b.body_poly([(-1, 0.0), (-0.9, -0.08), (0.9, -0.08), (1, 0.02), (1, 0.4), (-1, 0.4)])])
    roof_c, _ = b.colors("roof")
    b.part("roof", [_poly([(-0.6, -0.06), (0.65, -0.06), (0.35, top), (-0.35, top)], roof_c)], (0.0, (top - 0.06) / 2))
    _window(b, -0.4, top + 0.07, -0.05, -0.12)
    _window(b, 0.05, top + 0.07, 0.38, -0.12)
    door_c, _ = b.colors("door")
    b.part("door", [_poly(_rect_pts(-0.15, 0.0, 0.3, 0.34), door_c)], (0.07, 0.17))
    r = b.u(0.2, 0.26)
    _wheel(b, -0.6, 0.42, r)
    _wheel(b, 0.6, 0.42, r)


def _bus(b: _Builder) -> None:
    b.body([b.body_poly(_rect_pts(-1, -0.55, 1, 0.4))])
    n = int(b.rng.integers(3, 6))
    span = 1.3 / n
    for k in range(n):
        x0 = -0.9 + k * span
        _window(b, x0, -0.45, x0 + span * 0.75, -0.12)
    door_c, _ = b.colors("door")
    b.part("door", [_poly(_rect_pts(0.55, -0.45, 0.85, 0.3), door_c)], (0.7, -0.07))
    r = b.u(0.17, 0.22)
    _wheel(b, -0.6, 0.4, r)
    _wheel(b, 0.5, 0.4, r)


def _bicycle(b: _Builder) -> None:
    r = b.u(0.36, 0.45)
    w = 0.06
    frame = b.body_color
    rear, front, pedal, seat, head = (-0.55, 0.3), (0.55, 0.3), (0.0, 0.3), (-0.15, -0.25), (0.4, -0.3)
    b.body([
        _line([rear, seat, pedal, rear], w, frame),
        _line([seat, head, pedal], w, frame),
        _line([head, front], w, frame),
        _line([(head[0] - 0.1, head[1] - 0.15), (head[0] + 0.15, head[1] - 0.15)], w, frame),
        _poly(_rect_pts(seat[0] - 0.15, seat[1] - 0.1, seat[0] + 0.12, seat[1] - 0.02), frame),
    ])
    _wheel(b, rear[0], rear[1], r, spokes=True)
    _wheel(b, front[0], front[1], r, spokes=True)


def _house(b: _Builder) -> None:
    peak = b.u(-1.0, -0.75)
    if b.rng.random() < 0.5:
        b.body([_poly(_rect_pts(0.35, -0.85, 0.55, -0.3), _distinct_color(b.rng, [b.body_color]))])
    b.body([b.body_poly(_rect_pts(-0.75, -0.25, 0.75, 0.95))])
    roof_c, _ = b.colors("roof")
    b.part("roof", [_poly([(-0.95, -0.2), (0.95, -0.2), (0.0, peak)], roof_c)], (0.0, (peak - 0.4) / 3))
    door_c, _ = b.colors("door")
    dx = b.u(-0.2, 0.2)
    b.part("door", [_poly(_rect_pts(dx - 0.15, 0.4, dx + 0.15, 0.95), door_c)], (dx, 0.67))
    s = b.u(0.13, 0.18)
    _window(b, -0.45 - s, 0.15 - s, -0.45 + s, 0.15 + s, cross=True)
    _window(b, 0.45 - s, 0.15 - s, 0.45 + s, 0.15 + s, cross=True)


def _tree(b: _Builder) -> None:
    trunk_c, _ = b.colors("trunk")
    tw = b.u(0.1, 0.16)
    b.part("trunk", [_poly([(-tw, 1.0), (tw, 1.0), (tw * 0.7, 0.0), (-tw * 0.7, 0.0)], trunk_c)], (0.0, 0.5))
    leaf_c, leaf_c2 = b.colors("leaf")
    n = int(b.rng.integers(5, 9))
    for k in range(n):
        a = 2 * math.pi * k / n + b.u(-0.2, 0.2)
        cx, cy = 0.4 * math.cos(a), -0.4 + 0.38 * math.sin(a)
        col = leaf_c if k % 2 == 0 else leaf_c2
        b.part("leaf", [_poly(_ellipse_pts(cx, cy, b.u(0.28, 0.36), b.u(0.16, 0.22), a), col)], (cx, cy))
    b.part("leaf", [_poly(_ellipse_pts(0.0, -0.4, 0.3, 0.22, b.u(0, 3)), leaf_c)], (0.0, -0.4))
    if b.rng.random() < 0.5:
        pc, _ = b.colors("petal")
        for _k in range(int(b.rng.integers(3, 6))):
            cx, cy = b.u(-0.5, 0.5), b.u(-0.75, -0.1)
            b.part("petal", [_poly(_ellipse_pts(cx, cy, 0.1, 0.06, b.u(0, 3)), pc)], (cx, cy))


def _flower(b: _Builder) -> None:
    trunk_c, _ = b.colors("trunk")
    b.part("trunk", [_line([(0.0, -0.3), (b.u(-0.1, 0.1), 0.35), (0.0, 1.0)], 0.08, trunk_c)], (0.0, 0.35))
    leaf_c, _ = b.colors("leaf")
    for side in (-1, 1):
        if side == 1 or b.rng.random() < 0.7:
            a = side * b.u(0.4, 0.8)
            cx, cy = side * 0.25, b.u(0.35, 0.65)
            b.part("leaf", [_poly(_ellipse_pts(cx, cy, 0.26, 0.09, a), leaf_c)], (cx, cy))
    pc, pc2 = b.colors("petal")
    n = int(b.rng.integers(5, 9))
    cy = -0.45
    for k in range(n):
        a = 2 * math.pi * k / n
        px, py = 0.3 * math.cos(a), cy + 0.3 * math.sin(a)
        b.part("petal", [_poly(_ellipse_pts(px, py, 0.24, 0.11, a), pc if k % 2 else pc2)], (px, py))
    b.body([_disc(0.0, cy, 0.15, b.body_color)])


def _face(b: _Builder) -> None:
    ear_c, _ = b.colors("ear")
    for side in (-1, 1):
        b.part("ear", [_poly(_ellipse_pts(side * 0.68, 0.0, 0.17, 0.27), ear_c)], (side * 0.72, 0.0))
    b.body([b.body_poly(_ellipse_pts(0.0, 0.0, 0.68, 0.92))])
    if b.rng.random() < 0.5:
        b.body([_poly(_ellipse_pts(0.0, -0.72, 0.55, 0.22), _distinct_color(b.rng, [b.body_color]))])
    ey = b.u(-0.3, -0.15)
    for side in (-1, 1):
        _eye(b, side * 0.3, ey, 0.17, 0.1)
    nose_c, _ = b.colors("nose")
    b.part("nose", [_poly([(0.0, -0.05), (-0.11, 0.25), (0.11, 0.25)], nose_c)], (0.0, 0.15))
    mouth_c, _ = b.colors("mouth")
    if b.rng.random() < 0.5:
        mouth = _line(_arc_pts(0.0, 0.3, 0.28, 0.5, math.pi - 0.5), 0.07, mouth_c)
    else:
        mouth = _poly(_ellipse_pts(0.0, 0.52, 0.25, 0.08), mouth_c)
    b.part("mouth", [mouth], (0.0, 0.5))


def _cat(b: _Builder) -> None:
    b.body([b.body_poly(_ellipse_pts(0.2, 0.55, 0.65, 0.38)),
            _line([(0.8, 0.6), (1.0, 0.3), (0.95, -0.1)], 0.08, b.body_color)])
    ear_c, _ = b.colors("ear")
    for side in (-1, 1):
        b.part("ear", [_poly([(side * 0.45, -0.45), (side * 0.12, -0.7), (side * 0.45, -1.0)], ear_c)],
               (side * 0.35, -0.7))
    head = _disc(0.0, -0.35, 0.5, b.body_color)
    b.body([head])
    for side in (-1, 1):
        _eye(b, side * 0.2, -0.45, 0.13, 0.09, slit=True)
    nose_c, _ = b.colors("nose")
    # Nose and mouth are drawn larger than a real cat's: at a third of this size (until
    # 2026-11-26) a cat's nose and mouth covered a median 14 pixels of a 128 px picture,
    # a speck to the viewer and a fifth of one conv3-conv5 map pixel's 8x8 window.
    b.part("nose", [_poly([(-0.11, -0.31), (0.11, -0.31), (0.0, -0.17)], nose_c)], (0.0, -0.26))
    mouth_c, _ = b.colors("mouth")
    b.part("mouth", [_line(_arc_pts(-0.1, -0.14, 0.1, 0.2, math.pi - 0.2, 6), 0.06, mouth_c),
                     _line(_arc_pts(0.1, -0.14, 0.1, 0.2, math.pi - 0.2, 6), 0.06, mouth_c)], (0.0, -0.08))
    wc = _distinct_color(b.rng, [b.body_color])
    b.body([_line([(s * 0.22, -0.2), (s * 0.58, -0.2 + d)], 0.025, wc) for s in (-1, 1) for d in (-0.08, 0.0, 0.08)])


def _fish(b: _Builder) -> None:
    fin_c, _ = b.colors("fin")
    b.part("fin", [_poly([(0.55, 0.0), (1.0, -0.45), (0.95, 0.0), (1.0, 0.45)], fin_c)], (0.85, 0.0))
    b.part("fin", [_poly([(-0.35, -0.3), (0.25, -0.3), (-0.15, -0.7)], fin_c)], (-0.1, -0.45))
    b.body([b.body_poly(_ellipse_pts(-0.1, 0.0, 0.72, 0.4))])
    _eye(b, -0.5, -0.1, 0.11, 0.11)
    mouth_c, _ = b.colors("mouth")
    # Longer and thicker than a real fish's, for the same reason as the cat's mouth.
    b.part("mouth", [_line([(-0.84, 0.04), (-0.6, 0.15)], 0.09, mouth_c)], (-0.72, 0.1))


def _boat(b: _Builder) -> None:
    fin_c, _ = b.colors("fin")
    b.part("fin", [_poly([(-0.2, 0.55), (0.2, 0.55), (0.05, 0.95)], fin_c)], (0.0, 0.7))
    sail = _distinct_color(b.rng, [b.body_color])
    b.body([_line([(0.0, 0.25), (0.0, -0.95)], 0.05, b.body_color),
            _poly([(0.06, -0.9), (0.06, 0.12), (b.u(0.55, 0.8), 0.12)], sail),
            _poly([(-0.06, -0.7), (-0.06, 0.12), (-b.u(0.4, 0.6), 0.12)], sail)])
    b.body([b.body_poly([(-1.0, 0.2), (1.0, 0.2), (0.7, 0.6), (-0.7, 0.6)])])
    win_c, _ = b.colors("window")
    for x in (-0.4, 0.0, 0.4):
        b.part("window", [_disc(x, 0.38, 0.08, win_c)], (x, 0.38))


BUILDERS: dict[str, Callable[[_Builder], None]] = {
    "car": _car, "bus": _bus, "bicycle": _bicycle, "house": _house, "tree": _tree,
    "flower": _flower, "face": _face, "cat": _cat, "fish": _fish, "boat": _boat,
}


# ------------------------------------------------------------------------- scrambling

def _move_group(g: Group, anchor: Point, rot: float) -> None:
    """Rotate a group's strokes by ``rot`` about its anchor and move the anchor."""
    ax, ay = g.anchor
    c, s = math.cos(rot), math.sin(rot)
    for p in g.prims:
        p.points = [(anchor[0] + c * (x - ax) - s * (y - ay), anchor[1] + s * (x - ax) + c * (y - ay))
                    for x, y in p.points]
    g.anchor = anchor


def _scramble(b: _Builder) -> str:
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
            _move_group(g, (x + b.u(-0.1, 0.1), -y if abs(y) > 0.2 else -y - 0.5 * math.copysign(1, y or 1)),
                        math.pi + b.u(-0.4, 0.4))
    elif strategy == "scatter":
        for g in parts:
            _move_group(g, (b.u(-0.85, 0.85), b.u(-0.85, 0.85)), b.u(0, 2 * math.pi))
    else:
        anchors = [g.anchor for g in parts]
        order = list(range(len(parts)))
        for _ in range(20):  # a shuffle where most parts land on another type's place
            b.rng.shuffle(order)
            same = sum(parts[i].owner == parts[j].owner for i, j in enumerate(order))
            if same <= len(parts) // 3:
                break
        for g, j in zip(parts, order, strict=True):
            _move_group(g, anchors[j], b.u(-0.5, 0.5) + (math.pi if b.rng.random() < 0.5 else 0.0))
    return strategy


# -------------------------------------------------------------------------- rendering

def _place(prims: list[Prim], scale: float, rot: float, cx: float, cy: float) -> None:
    """Canonical frame -> image pixels: scale (half the object side), rotate, translate."""
    c, s = math.cos(rot), math.sin(rot)
    for p in prims:
        p.points = [(cx + scale * (c * x - s * y), cy + scale * (s * x + c * y)) for x, y in p.points]
        p.radius *= scale
        p.width *= scale


def rasterize(prim: Prim, size: int) -> np.ndarray:
    """The stroke's own boolean layer: exactly the pixels it paints on a size x size image."""
    layer = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(layer)
    if prim.shape == "polygon":
        draw.polygon(prim.points, fill=255)
    elif prim.shape in ("disc", "ring"):
        (x, y), r = prim.points[0], max(prim.radius, 0.5)
        box = (x - r, y - r, x + r, y + r)
        if prim.shape == "disc":
            draw.ellipse(box, fill=255)
        else:
            draw.ellipse(box, outline=255, width=max(1, round(prim.width)))
    elif prim.shape == "line":
        draw.line(prim.points, fill=255, width=max(1, round(prim.width)), joint="curve")
    else:
        raise ValueError(f"unknown shape {prim.shape!r}")
    return np.asarray(layer) > 0


def _paint(image: np.ndarray, owners: np.ndarray, prim: Prim, grid: tuple[np.ndarray, np.ndarray]) -> None:
    layer = rasterize(prim, image.shape[0])
    if prim.texture is None:
        image[layer] = prim.color
    else:
        yy, xx = grid
        u = (xx * math.cos(prim.angle) + yy * math.sin(prim.angle)) / prim.period
        if prim.texture == "stripes":
            on = (np.floor(u) % 2) == 0
        else:
            v = (-xx * math.sin(prim.angle) + yy * math.cos(prim.angle)) / prim.period
            on = ((np.floor(u) + np.floor(v)) % 2) == 0
        image[layer & on] = prim.color
        image[layer & ~on] = prim.color2
    owners[layer] = prim.owner


def _background(rng: np.random.Generator, size: int, grid: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, str]:
    kind = str(rng.choice(BACKGROUNDS))
    c1 = np.array(_random_color(rng), dtype=np.float32)
    c2 = np.array(_random_color(rng), dtype=np.float32)
    yy, xx = grid
    if kind == "gradient" or (kind == "clutter" and rng.random() < 0.5):
        a = rng.uniform(0, 2 * math.pi)
        t = (xx * math.cos(a) + yy * math.sin(a)) / size
        t = (t - t.min()) / max(float(np.ptp(t)), 1e-6)
        img = c1 + t[..., None] * (c2 - c1)
    elif kind == "noise":
        cells = int(rng.integers(3, 9))
        low = rng.uniform(0, 255, size=(cells, cells, 3)).astype(np.uint8)
        img = np.asarray(Image.fromarray(low).resize((size, size), Image.Resampling.BICUBIC), dtype=np.float32)
        img = 0.5 * img + 0.5 * c1 + rng.normal(0, 12, size=(size, size, 3))
    elif kind == "stripes":
        a, period = rng.uniform(0, math.pi), rng.uniform(4, 16)
        on = (np.floor((xx * math.cos(a) + yy * math.sin(a)) / period) % 2) == 0
        img = np.where(on[..., None], c1, c2)
    else:
        img = np.broadcast_to(c1, (size, size, 3))
    return np.clip(img, 0, 255).astype(np.uint8), kind


def _clutter(rng: np.random.Generator, size: int) -> list[Prim]:
    """Stray strokes (lines and arcs, never whole parts) that belong to the background."""
    prims = []
    for _ in range(int(rng.integers(6, 15))):
        color = _random_color(rng)
        w = float(rng.uniform(1, 4))
        if rng.random() < 0.5:
            pts = [tuple(rng.uniform(0, size, 2)) for _ in range(2)]
        else:
            cx, cy, r = *rng.uniform(0, size, 2), rng.uniform(size * 0.05, size * 0.2)
            a0 = rng.uniform(0, 2 * math.pi)
            pts = _arc_pts(cx, cy, r, a0, a0 + rng.uniform(0.5, 2.5), 8)
        prims.append(Prim("line", [(float(x), float(y)) for x, y in pts], color, BACKGROUND, width=w))
    return prims


# The random stream part dropping draws from: [seed, index, DROP_STREAM], apart from the
# world's own [seed, index], so dropping never shifts what else the picture holds.
DROP_STREAM = 1


def _drop_draw(rng: np.random.Generator, b: _Builder, p: float) -> set[int]:
    """Owner codes of the part types to leave out: none with probability 1 - p, else each
    type with probability 1/2, redrawn until at least one goes and at least one stays."""
    kinds = sorted({g.owner for g in b.groups if g.owner != BODY})
    if len(kinds) < 2 or rng.random() >= p:
        return set()
    while True:
        gone = {k for k in kinds if rng.random() < 0.5}
        if 0 < len(gone) < len(kinds):
            return gone


def generate(seed: int, index: int, size: int = 192, label: int | None = None,
             post: bool = True, omit: str | None = None, drop_parts: float = 0.0) -> Sample:
    """Image number ``index`` of world ``seed``: same arguments, same pixels and masks.

    The class is ``index % len(CLASSES)`` unless ``label`` is given, so consecutive
    indices are balanced. ``post=False`` skips blur and noise (tests compare colours).
    ``omit`` (a part type) leaves that part's strokes undrawn and changes nothing else:
    painting draws no random numbers, so background, placement, blur and noise are the
    same, and what the part covered shows through (models/reliance.py).
    ``drop_parts`` (a probability, for training) leaves a random subset of the object's part
    types undrawn, at least one and never all: each type goes with probability 1/2. The
    choice comes from a random stream of its own, so the picture is otherwise the same one.
    """
    rng = np.random.default_rng([seed, index])
    label = index % len(CLASSES) if label is None else label
    name = CLASSES[label]
    grid = np.mgrid[0:size, 0:size].astype(np.float32)
    yy, xx = grid[0], grid[1]
    image, bg_kind = _background(rng, size, (yy, xx))
    image = image.copy()
    owners = np.zeros((size, size), dtype=np.uint8)
    prims: list[Prim] = _clutter(rng, size) if bg_kind == "clutter" else []

    b = _Builder(rng)
    source = str(rng.choice(list(BUILDERS))) if name == "scrambled" else name
    BUILDERS[source](b)
    if name == "scrambled":
        _scramble(b)
    obj = [p for g in b.groups for p in g.prims]
    frac = rng.uniform(0.3, 0.9)  # object side as a fraction of the image side
    half = frac * size / 2
    slack = 0.1 * half  # may poke out of the frame a little
    cx = rng.uniform(half - slack, size - half + slack)
    cy = rng.uniform(half - slack, size - half + slack)
    _place(obj, half, rng.uniform(-0.35, 0.35), cx, cy)
    prims += obj

    if rng.random() < 0.3:  # an occluder over part of the object
        r = half * rng.uniform(0.2, 0.45)
        ox, oy = cx + rng.uniform(-1, 1) * half, cy + rng.uniform(-1, 1) * half
        occ = Prim("polygon", _ellipse_pts(ox, oy, r, r * rng.uniform(0.4, 1.0), rng.uniform(0, 3),
                                           int(rng.integers(3, 9))), _random_color(rng), OCCLUDER)
        prims.append(occ)

    dropped = {part_owner(omit)} if omit is not None else set()
    if drop_parts > 0.0:
        dropped |= _drop_draw(np.random.default_rng([seed, index, DROP_STREAM]), b, drop_parts)
    if dropped:
        prims = [p for p in prims if p.owner not in dropped]
    for p in prims:
        _paint(image, owners, p, (yy, xx))

    clean = image.copy()
    if post:
        if rng.random() < 0.4:
            image = np.array(Image.fromarray(image).filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.2))))
        if rng.random() < 0.5:
            noisy = image.astype(np.float32) + rng.normal(0, rng.uniform(2, 10), size=image.shape)
            image = np.clip(noisy, 0, 255).astype(np.uint8)
    part_masks = {p: owners == part_owner(p) for p in PARTS}
    object_mask = (owners >= BODY) & (owners != OCCLUDER)
    return Sample(np.ascontiguousarray(image), label, part_masks, object_mask, prims, clean)


def generate_batch(seed: int, start: int, count: int, size: int = 192,
                   with_masks: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Images ``start .. start+count`` as arrays.

    Returns (images uint8 NxHxWx3, labels int64 N, masks bool NxCxHxW or None) where the
    mask channels are PARTS followed by the object mask.
    """
    images = np.empty((count, size, size, 3), dtype=np.uint8)
    labels = np.empty(count, dtype=np.int64)
    masks = np.empty((count, len(PARTS) + 1, size, size), dtype=bool) if with_masks else None
    for i in range(count):
        s = generate(seed, start + i, size)
        images[i], labels[i] = s.image, s.label
        if masks is not None:
            for k, p in enumerate(PARTS):
                masks[i, k] = s.part_masks[p]
            masks[i, -1] = s.object_mask
    return images, labels, masks


def images_per_second(size: int = 192, count: int = 200, seed: int = 0) -> float:
    """Generator throughput on the calling thread (one core)."""
    import time

    t0 = time.perf_counter()
    generate_batch(seed, 0, count, size)
    return count / (time.perf_counter() - t0)

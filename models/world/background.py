"""Backgrounds: the five kinds of backdrop, and the stray strokes of a cluttered one.

The background never depends on the class; its clutter is lines and arcs, never whole
parts, and is owned by the background in the owner map.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from models.world.catalog import BACKGROUND, BACKGROUNDS
from models.world.prims import Prim, arc_pts, random_color


def background(rng: np.random.Generator, size: int, grid: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, str]:
    """A size x size uint8 backdrop of a random kind (one of BACKGROUNDS), and that kind."""
    kind = str(rng.choice(BACKGROUNDS))
    c1 = np.array(random_color(rng), dtype=np.float32)
    c2 = np.array(random_color(rng), dtype=np.float32)
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


def clutter(rng: np.random.Generator, size: int) -> list[Prim]:
    """Stray strokes (lines and arcs, never whole parts) that belong to the background."""
    prims = []
    for _ in range(int(rng.integers(6, 15))):
        color = random_color(rng)
        w = float(rng.uniform(1, 4))
        if rng.random() < 0.5:
            pts = [tuple(rng.uniform(0, size, 2)) for _ in range(2)]
        else:
            cx, cy, r = *rng.uniform(0, size, 2), rng.uniform(size * 0.05, size * 0.2)
            a0 = rng.uniform(0, 2 * math.pi)
            pts = arc_pts(cx, cy, r, a0, a0 + rng.uniform(0.5, 2.5), 8)
        prims.append(Prim("line", [(float(x), float(y)) for x, y in pts], color, BACKGROUND, width=w))
    return prims

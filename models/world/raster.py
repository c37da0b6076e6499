"""Rasterizing: strokes to pixels, and the owner map the exact masks are read from.

Every stroke is rasterized on its own into a boolean layer and painted into the image
and into the owner map with that same layer, so a part's mask is exactly the pixels
where its strokes stay visible after later strokes (occluders, other parts) are drawn.
Painting draws no random numbers.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

from models.world.prims import Prim


def place(prims: list[Prim], scale: float, rot: float, cx: float, cy: float) -> None:
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


def paint(image: np.ndarray, owners: np.ndarray, prim: Prim, grid: tuple[np.ndarray, np.ndarray]) -> None:
    """Paint one stroke into ``image`` (its colour or texture) and its owner code into ``owners``."""
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

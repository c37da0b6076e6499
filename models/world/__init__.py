"""The parts world: a pure, seeded generator of images built from strokes, parts and objects.

Hierarchy, so that what a network should learn is known in advance:

* strokes: polygons, discs, rings and thick polylines (edges at every orientation, arcs,
  colour boundaries, stripe and checker fills) -- the :class:`Prim` records (``prims``);
* parts: groups of strokes with a part type (wheel, window, eye, ...), each type shared by
  at least two object classes (``parts``);
* objects: the classes, a body plus parts in a canonical arrangement (``objects``), and
  ``scrambled``: the parts of some class in an impossible arrangement (flipped, scattered
  or swapped), so that configuration, not mere presence, decides the class (``scramble``).

Nuisance never depends on the class: random colours, position, scale (30-90 % of the
image), rotation, five kinds of background (``background``), occluders, blur and pixel
noise (``scene``).

Masks are exact: every stroke is rasterized on its own into a boolean layer and painted
into the image and into an owner map with that same layer (``raster``), so a part's mask
is exactly the pixels where its strokes stayed visible after later strokes (occluders,
other parts) were drawn. Blur and noise touch only the image; masks describe the drawn
geometry.

Everything random comes from ``numpy.random.default_rng([seed, index])``: the same
``(seed, index, size)`` gives the same image and masks on any machine. The names the rest
of the repo uses (``from models import world; world.generate(...)``) are re-exported here;
the class and part vocabulary lives in ``catalog``.
"""

from __future__ import annotations

from models.world.catalog import (
    BACKGROUND,
    BACKGROUNDS,
    BODY,
    CLASS_PARTS,
    CLASSES,
    OCCLUDER,
    PARTS,
    VISIBLE_PIXELS,
    part_owner,
)
from models.world.prims import Prim
from models.world.raster import rasterize
from models.world.scene import DROP_STREAM, Sample, generate, generate_batch, images_per_second

__all__ = [
    "BACKGROUND",
    "BACKGROUNDS",
    "BODY",
    "CLASSES",
    "CLASS_PARTS",
    "DROP_STREAM",
    "OCCLUDER",
    "PARTS",
    "VISIBLE_PIXELS",
    "Prim",
    "Sample",
    "generate",
    "generate_batch",
    "images_per_second",
    "part_owner",
    "rasterize",
]

"""Scenes: one seeded picture (background, object, occluder, blur and noise) with its exact masks.

Everything random comes from ``numpy.random.default_rng([seed, index])`` and is drawn in
a fixed order (background, clutter, object, placement, occluder, post-processing), so the
same ``(seed, index, size)`` gives the same image and masks on any machine. Part
dropping draws from a stream of its own and leaves that order alone.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageFilter

from models.world import seeds
from models.world.background import background, clutter
from models.world.catalog import BODY, CLASSES, OCCLUDER, PARTS, part_owner
from models.world.objects import BUILDERS
from models.world.parts import Builder
from models.world.prims import Prim, ellipse_pts, random_color
from models.world.raster import paint, place
from models.world.scramble import scramble

# The random stream part dropping draws from: [seed, index, DROP_STREAM], apart from the
# world's own [seed, index], so dropping never shifts what else the picture holds.
DROP_STREAM = 1


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
        """The name of the picture's class."""
        return CLASSES[self.label]


def _object(rng: np.random.Generator, name: str, size: int) -> tuple[Builder, float, float, float]:
    """Build class ``name``'s object and place it in the image; returns it, its half side and centre."""
    b = Builder(rng)
    source = str(rng.choice(list(BUILDERS))) if name == "scrambled" else name
    BUILDERS[source](b)
    if name == "scrambled":
        scramble(b)
    frac = rng.uniform(0.3, 0.9)  # object side as a fraction of the image side
    half = frac * size / 2
    slack = 0.1 * half  # may poke out of the frame a little
    cx = rng.uniform(half - slack, size - half + slack)
    cy = rng.uniform(half - slack, size - half + slack)
    place([p for g in b.groups for p in g.prims], half, rng.uniform(-0.35, 0.35), cx, cy)
    return b, half, cx, cy


def _occluder(rng: np.random.Generator, half: float, cx: float, cy: float) -> Prim:
    """A random polygon over part of the object placed at (cx, cy) with half side ``half``."""
    r = half * rng.uniform(0.2, 0.45)
    ox, oy = cx + rng.uniform(-1, 1) * half, cy + rng.uniform(-1, 1) * half
    return Prim("polygon", ellipse_pts(ox, oy, r, r * rng.uniform(0.4, 1.0), rng.uniform(0, 3),
                                       int(rng.integers(3, 9))), random_color(rng), OCCLUDER)


def _drop_draw(rng: np.random.Generator, b: Builder, p: float) -> set[int]:
    """Owner codes of the part types to leave out: none with probability 1 - p, else each
    type with probability 1/2, redrawn until at least one goes and at least one stays."""
    kinds = sorted({g.owner for g in b.groups if g.owner != BODY})
    if len(kinds) < 2 or rng.random() >= p:
        return set()
    while True:
        gone = {k for k in kinds if rng.random() < 0.5}
        if 0 < len(gone) < len(kinds):
            return gone


def _post(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    """Sometimes blur, sometimes add pixel noise: nuisance that touches only the image."""
    if rng.random() < 0.4:
        image = np.array(Image.fromarray(image).filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.2))))
    if rng.random() < 0.5:
        noisy = image.astype(np.float32) + rng.normal(0, rng.uniform(2, 10), size=image.shape)
        image = np.clip(noisy, 0, 255).astype(np.uint8)
    return image


def generate(seed: int, index: int, size: int = 192, label: int | None = None,
             post: bool = True, omit: str | None = None, drop_parts: float = 0.0) -> Sample:
    """Image number ``index`` of world ``seed``: same arguments, same pixels and masks.

    The class is ``index % len(CLASSES)`` unless ``label`` is given, so consecutive
    indices are balanced. ``post=False`` skips blur and noise (tests compare colours).
    ``omit`` (a part type) leaves that part's strokes undrawn and changes nothing else:
    painting draws no random numbers, so background, placement, blur and noise are the
    same, and what the part covered shows through (models/analysis/reliance.py).
    ``drop_parts`` (a probability, for training) leaves a random subset of the object's part
    types undrawn, at least one and never all: each type goes with probability 1/2. The
    choice comes from a random stream of its own, so the picture is otherwise the same one.
    """
    rng = np.random.default_rng([seed, index])
    label = index % len(CLASSES) if label is None else label
    grid = np.mgrid[0:size, 0:size].astype(np.float32)
    yy, xx = grid[0], grid[1]
    image, bg_kind = background(rng, size, (yy, xx))
    image = image.copy()
    owners = np.zeros((size, size), dtype=np.uint8)
    prims: list[Prim] = clutter(rng, size) if bg_kind == "clutter" else []
    b, half, cx, cy = _object(rng, CLASSES[label], size)
    prims += [p for g in b.groups for p in g.prims]
    if rng.random() < 0.3:  # an occluder over part of the object
        prims.append(_occluder(rng, half, cx, cy))

    dropped = {part_owner(omit)} if omit is not None else set()
    if drop_parts > 0.0:
        dropped |= _drop_draw(np.random.default_rng([seed, index, DROP_STREAM]), b, drop_parts)
    if dropped:
        prims = [p for p in prims if p.owner not in dropped]
    for p in prims:
        paint(image, owners, p, (yy, xx))

    clean = image.copy()
    if post:
        image = _post(rng, image)
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


def images_per_second(size: int = 192, count: int = 200, seed: int = seeds.TIMING) -> float:
    """Generator throughput on the calling thread (one core)."""
    t0 = time.perf_counter()
    generate_batch(seed, 0, count, size)
    return count / (time.perf_counter() - t0)

"""Synthetic photo-like pictures: what "not the parts world" looks like, with no real photo.

Four kinds, in turn (picture ``i`` is kind ``i % 4``), each in muted, photo-like colours or
in saturated ones (half and half), all seeded (``[seed, index]``):

* ``leaves``: a dead-leaves model (Matheron; Lee, Mumford & Huang, 2001): occluding discs,
  ellipses and rectangles whose sizes follow a power law, each lit like a curved surface
  (brightness changes, hue stays), the scale-free statistics of natural scenes;
* ``noise``: 1/f^a noise in brightness (a = 1.2..3) with weaker colour noise, like foliage,
  clouds, fur or sand;
* ``sky``: a smooth, non-linear gradient with a few lit silhouettes before it;
* ``lit_world``: a parts-world scene (world seed ``seed``) under smooth uneven light and
  fine texture, sometimes greyed: a drawing photographed, so the head learns the look of a
  photo rather than the absence of parts-world objects.

Then a random tone curve and colour cast, a grey picture one time in four, often a slight
blur, sometimes brightness noise (the same in all channels, as a sensor's is mostly).
"""

from __future__ import annotations

import colorsys
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageFilter

from models import world

KINDS = ("leaves", "noise", "sky", "lit_world")
MAX_LEAVES = 4000


def pink(rng: np.random.Generator, size: int, alpha: float) -> np.ndarray:
    """Zero-mean, unit-variance noise whose power falls as 1/f^alpha, float64 [size, size]."""
    fy, fx = np.fft.fftfreq(size)[:, None], np.fft.rfftfreq(size)[None, :]
    radius = np.sqrt(fy ** 2 + fx ** 2)
    radius[0, 0] = 1.0
    spectrum = (rng.normal(size=radius.shape) + 1j * rng.normal(size=radius.shape)) / radius ** (alpha / 2)
    spectrum[0, 0] = 0.0
    x = np.fft.irfft2(spectrum, s=(size, size))
    return np.asarray((x - x.mean()) / (x.std() + 1e-9))


def colour(rng: np.random.Generator, saturated: bool) -> np.ndarray:
    """An RGB colour in [0, 1]: muted (photo-like: mostly grey with a tint) or saturated."""
    if saturated:
        h, s, v = rng.random(), rng.uniform(0.2, 1.0), rng.uniform(0.15, 1.0)
    else:
        h, s, v = rng.random(), min(rng.exponential(0.15), 0.9), rng.beta(1.5, 1.5)
    return np.array(colorsys.hsv_to_rgb(h, s, v))


def _leaf(rng: np.random.Generator, size: int, r: float) -> tuple[slice, slice, np.ndarray, np.ndarray, np.ndarray]:
    """One leaf of radius ``r``: its bounding box, its mask there, and its coordinates in its own frame."""
    cx, cy = rng.uniform(-r, size + r, 2)
    x0, x1 = int(max(cx - r, 0)), int(min(cx + r + 1, size))
    y0, y1 = int(max(cy - r, 0)), int(min(cy + r + 1, size))
    yy, xx = np.mgrid[y0:max(y1, y0), x0:max(x1, x0)].astype(np.float64)
    a, e = rng.uniform(0, np.pi), rng.uniform(0.3, 1)
    u = (xx - cx) * np.cos(a) + (yy - cy) * np.sin(a)
    v = -(xx - cx) * np.sin(a) + (yy - cy) * np.cos(a)
    mask = (u / r) ** 2 + (v / (r * e)) ** 2 < 1 if rng.random() < 0.6 else (np.abs(u) < r) & (np.abs(v) < r * e)
    return slice(y0, y1), slice(x0, x1), mask, u / r, v / r


def leaves(rng: np.random.Generator, size: int, saturated: bool) -> np.ndarray:
    """Dead leaves, front to back: each new leaf shows only where no nearer one lies."""
    img = np.zeros((size, size, 3))
    covered = np.zeros((size, size), dtype=bool)
    rmin, rmax = rng.uniform(1, 4), size * rng.uniform(0.2, 0.9)
    light = rng.uniform(0, 0.5)
    for _ in range(MAX_LEAVES):
        r = float((rmin ** -2 - rng.random() * (rmin ** -2 - rmax ** -2)) ** -0.5)  # density ~ r^-3
        rows, cols, mask, u, v = _leaf(rng, size, r)
        mask = mask & ~covered[rows, cols]
        if not mask.any():
            continue
        shade = 1 + light * (rng.normal() * u + rng.normal() * v - rng.uniform(0, 1) * (u ** 2 + v ** 2))
        patch = img[rows, cols]
        patch[mask] = colour(rng, saturated)[None, :] * shade[mask][:, None]
        covered[rows, cols] |= mask
        if covered.mean() > 0.995:
            break
    img[~covered] = colour(rng, saturated)
    return img


def noise(rng: np.random.Generator, size: int, saturated: bool) -> np.ndarray:
    alpha = rng.uniform(1.2, 3.0)
    brightness = 1 + rng.uniform(0.1, 0.5) * pink(rng, size, alpha)
    strength = rng.uniform(0, 0.3 if saturated else 0.08)
    tint = np.stack([strength * pink(rng, size, alpha + rng.uniform(0, 1)) for _ in range(3)], axis=-1)
    return np.asarray(colour(rng, saturated) * brightness[..., None] + tint)


def sky(rng: np.random.Generator, size: int, saturated: bool) -> np.ndarray:
    t = np.linspace(0, 1, size)[:, None, None] ** rng.uniform(0.3, 3.0)
    top, bottom = colour(rng, saturated), colour(rng, saturated)
    img = np.broadcast_to(top + t * (bottom - top), (size, size, 3)).copy()
    front = leaves(rng, size, saturated)
    silhouette = pink(rng, size, 3.5) > rng.uniform(0.5, 2.0)
    img[silhouette] = front[silhouette]
    return img * (1 + rng.uniform(0, 0.08) * pink(rng, size, 2.0))[..., None]


def lit_world(rng: np.random.Generator, size: int, saturated: bool, scene: np.ndarray) -> np.ndarray:
    img = scene.astype(np.float64) / 255
    img = img * (1 + rng.uniform(0.1, 0.5) * pink(rng, size, rng.uniform(2.5, 4)))[..., None]  # uneven light
    img = img * (1 + rng.uniform(0.03, 0.2) * pink(rng, size, rng.uniform(1, 2)))[..., None]  # surface texture
    if not saturated:
        grey = img.mean(-1, keepdims=True)
        img = grey + rng.uniform(0, 0.6) * (img - grey)
    return img


DRAW = {"leaves": leaves, "noise": noise, "sky": sky}


def _finish(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    """Tone curve, colour cast, sometimes grey, blur and brightness noise -> uint8."""
    img = np.clip(img, 0, None) ** rng.uniform(0.7, 1.4) * rng.uniform(0.85, 1.15, 3)
    if rng.random() < 0.25:
        img = np.repeat(img.mean(-1, keepdims=True), 3, axis=-1)
    picture = Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8))
    if rng.random() < 0.7:
        picture = picture.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.5)))
    out = np.asarray(picture).astype(np.float64)
    if rng.random() < 0.4:
        out = out + rng.normal(0, rng.uniform(1, 6), size=(*out.shape[:2], 1))
    return np.clip(out, 0, 255).astype(np.uint8)


def outlier(seed: int, index: int, size: int) -> np.ndarray:
    """Synthetic picture ``index`` of ``seed``: uint8 [size, size, 3]; same arguments, same pixels."""
    rng = np.random.default_rng([seed, index])
    kind = KINDS[index % len(KINDS)]
    saturated = bool(rng.random() < 0.5)
    if kind == "lit_world":
        img = lit_world(rng, size, saturated, world.generate(seed, index, size).image)
    else:
        draw: Callable[[np.random.Generator, int, bool], np.ndarray] = DRAW[kind]
        img = draw(rng, size, saturated)
    return _finish(rng, img)


def outlier_batch(seed: int, start: int, count: int, size: int) -> np.ndarray:
    """Pictures ``start .. start+count`` of ``seed``, uint8 [count, size, size, 3]."""
    pictures = [outlier(seed, start + i, size) for i in range(count)]
    return np.stack(pictures) if pictures else np.zeros((0, size, size, 3), dtype=np.uint8)

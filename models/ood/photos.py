"""Real photos to measure the unfamiliarity scores on, never to fit them on.

Every photo an installed package ships: scikit-image's bundled sample data (the wheel's own
files; nothing is downloaded) and matplotlib's Grace Hopper portrait. Each is scored whole
and as random square crops with random flips, every one preprocessed the way the server
does (``server_preprocess``: resize the short side, centre crop, normalize), plus
scikit-image's 25 x 25 LFW faces, upscaled, as a group of their own. scikit-image is a
test and measurement extra: ``photos`` raises ImportError without it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from PIL import Image
from torchvision.transforms import InterpolationMode
from torchvision.transforms._presets import ImageClassification

# skimage.data loaders that are photographs (scenes, portraits, micrographs, scans, textures),
# not drawings or masks: colour first, then grey.
SKIMAGE_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry",
                  "retina", "camera", "coins", "moon", "brick", "grass", "gravel", "clock", "cell", "page", "text")
MATPLOTLIB_PHOTOS = ("grace_hopper.jpg",)
MOTORCYCLE = "motorcycle"  # the left view of skimage's stereo pair
FACES = "lfw_faces"

Preprocess = Callable[[Image.Image], torch.Tensor]


def server_preprocess(size: int, mean: Sequence[float], std: Sequence[float]) -> Preprocess:
    """The served tiny model's preprocessing (models/zoo/registry.py builds the same preset)."""
    return ImageClassification(crop_size=size, resize_size=size, mean=list(mean), std=list(std),
                               interpolation=InterpolationMode.BILINEAR)


def photos() -> dict[str, Image.Image]:
    """Every shipped photo by name, as RGB pictures at their own size."""
    import matplotlib.cbook as cbook
    import skimage.data as data

    found = {name: Image.fromarray(getattr(data, name)()).convert("RGB") for name in SKIMAGE_PHOTOS}
    left, _, _ = data.stereo_motorcycle()
    found[MOTORCYCLE] = Image.fromarray(left).convert("RGB")
    for file in MATPLOTLIB_PHOTOS:
        with Image.open(cbook.get_sample_data(file, asfileobj=False)) as image:
            found[file.split(".")[0]] = image.convert("RGB")
    return found


def crops(image: Image.Image, count: int, rng: np.random.Generator, smallest: float) -> list[Image.Image]:
    """``count`` random squares, their side log-uniform between ``smallest`` and 1 of the short
    side, each flipped left-right half the time."""
    out = []
    for _ in range(count):
        side = max(int(min(image.size) * np.exp(rng.uniform(np.log(smallest), 0.0))), 8)
        left = int(rng.integers(0, image.width - side + 1))
        top = int(rng.integers(0, image.height - side + 1))
        crop = image.crop((left, top, left + side, top + side))
        out.append(crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if rng.random() < 0.5 else crop)
    return out


def photo_set(preprocess: Preprocess, crops_per_photo: int, seed: int, smallest: float = 0.15,
              faces: int = 100) -> dict[str, torch.Tensor]:
    """Name -> the network's inputs [1 + crops_per_photo, 3, H, W] (the whole photo first), and
    ``FACES`` -> the first ``faces`` LFW faces [faces, 3, H, W]."""
    import skimage.data as data

    rng = np.random.default_rng(seed)
    groups = {name: torch.stack([preprocess(image)] + [preprocess(c) for c in crops(image, crops_per_photo, rng,
                                                                                   smallest)])
              for name, image in photos().items()}
    if faces:
        grey = (data.lfw_subset()[:faces] * 255).astype(np.uint8)
        groups[FACES] = torch.stack([preprocess(Image.fromarray(f).convert("RGB")) for f in grey])
    return groups

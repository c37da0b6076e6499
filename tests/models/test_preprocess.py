"""The network's input: one normalization, the same numbers as the server's torchvision preprocessing."""

from __future__ import annotations

import numpy as np
import torch
import torchvision.transforms.functional as TF

from models import world
from models.preprocess import MEAN, STD, normalize, normalize_chw, normalize_samples, standardize
from models.zoo.tinyweights import WEIGHTS_DIR, read_meta


def _pictures() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, size=(3, 9, 7, 3), dtype=np.uint8)


def test_each_value_is_its_share_of_255_standardized_per_channel() -> None:
    images = _pictures()
    x = normalize(images, MEAN, STD)
    assert x.shape == (3, 3, 9, 7) and x.dtype == torch.float32
    n, i, j = 2, 4, 5
    for c in range(3):
        by_hand = (np.float32(images[n, i, j, c]) / np.float32(255) - np.float32(MEAN[c])) / np.float32(STD[c])
        assert float(x[n, c, i, j]) == float(by_hand)


def test_every_layout_and_entry_point_gives_the_same_numbers() -> None:
    images = _pictures()
    x = normalize(images, MEAN, STD)
    chw = torch.from_numpy(images).permute(0, 3, 1, 2)
    assert torch.equal(normalize_chw(chw, MEAN, STD), x)
    assert torch.equal(normalize_chw(chw.contiguous(), MEAN, STD), x)
    assert torch.equal(standardize(chw.float() / 255.0, MEAN, STD), x)
    samples = [world.generate(5, i, 32) for i in range(2)]
    assert torch.equal(normalize_samples(samples, {"mean": MEAN, "std": STD}),
                       normalize(np.stack([s.image for s in samples]), MEAN, STD))


def test_the_numbers_are_the_servers() -> None:
    """What app/imaging.py runs: torchvision's (v1) dtype conversion, then its normalize, bit for bit."""
    images = _pictures()
    chw = torch.from_numpy(images).permute(0, 3, 1, 2)
    served = TF.normalize(TF.convert_image_dtype(chw, torch.float), mean=MEAN, std=STD)
    assert torch.equal(normalize(images, MEAN, STD), served)


def test_the_shipped_model_was_trained_and_is_served_with_these_statistics() -> None:
    meta = read_meta(WEIGHTS_DIR)
    assert (meta["mean"], meta["std"]) == (MEAN, STD)

"""The exposure score: a head that has seen what "not the parts world" looks like.

Outlier exposure (after Hendrycks et al., 2019) without a single real photo: a committee of
small two-layer networks learns to tell generated parts-world pictures from synthetic
photo-like ones (models/ood/outliers.py: dead leaves, 1/f noise, skies, photo-lit world
scenes). It reads what one served forward pass already has: the picture's own pixel
statistics (models/ood/pixels.py) and the combined score of that pass (models/ood/scores.py).
Some familiar training pictures are JPEG-compressed or drawn larger and resized, and some
outliers compressed, so that neither a JPEG's colour subsampling nor resampling is what the
head learns to call a photo.

The head's value is then calibrated per predicted class: the score is the surprise (-log of
the share of held-out generated pictures of that class with a value at least as high,
models.ood.scores.surprise), so one threshold, -log(1 - percentile / 100), flags about the
same share of familiar pictures in every class.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch

from models.ood.pixels import PIXEL_NAMES, pixel_statistics
from models.ood.scores import Evidence, combined, surprise
from models.ood.stats import HeadStats, OODStats

HEAD_INPUTS = (*PIXEL_NAMES, "combined")
MEMBERS = 3  # committee members, averaged: one member's quirks on pictures unlike both sides average out
HIDDEN = 32
WEIGHT_DECAY = 1e-3
STEPS = 300  # full-batch Adam steps
LEARNING_RATE = 1e-2
MIN_CLASS_REFERENCE = 50  # a class predicted fewer times in the calibration set uses every picture's values


@dataclass(frozen=True)
class HeadFit:
    """A trained committee before calibration: standardization and the members' weights."""

    centre: np.ndarray
    scale: np.ndarray
    w1: np.ndarray
    b1: np.ndarray
    w2: np.ndarray
    b2: np.ndarray


def head_inputs(stats: OODStats, batch: torch.Tensor, seen: Evidence, mean: Sequence[float],
                std: Sequence[float]) -> np.ndarray:
    """The head's inputs for normalized pictures [B, 3, H, W] and their pass: float64 [B, D]."""
    return np.concatenate([pixel_statistics(batch, mean, std), combined(stats, seen)[:, None]], axis=1)


def committee(fitted: HeadFit | HeadStats, inputs: np.ndarray) -> np.ndarray:
    """The members' mean logit (larger: more like the outliers), float64 [B]."""
    z = (inputs - fitted.centre) / fitted.scale
    hidden = np.maximum(np.einsum("bd,mhd->mbh", z, fitted.w1) + fitted.b1[:, None, :], 0.0)
    return np.asarray((np.einsum("mbh,mh->mb", hidden, fitted.w2) + fitted.b2[:, None]).mean(axis=0))


def train_head(familiar: np.ndarray, outliers: np.ndarray, members: int = MEMBERS, hidden: int = HIDDEN,
               steps: int = STEPS) -> HeadFit:
    """Train the committee on familiar [N, D] (label 0) against outlier [M, D] (label 1) inputs.

    Inputs are standardized by the familiar pictures' mean and std; both sides weigh the
    same in the loss (the outliers' positive weight is N / M). Member k starts from torch
    seed k, inside a forked generator state, so training is repeatable and leaves the
    caller's random state alone."""
    centre, scale = familiar.mean(0), familiar.std(0) + 1e-6
    x = torch.tensor((np.concatenate([familiar, outliers]) - centre) / scale, dtype=torch.float32)
    y = torch.cat([torch.zeros(len(familiar)), torch.ones(len(outliers))])
    weight = torch.tensor(len(familiar) / max(len(outliers), 1))
    layers = []
    with torch.random.fork_rng():
        for k in range(members):
            torch.manual_seed(k)
            net = torch.nn.Sequential(torch.nn.Linear(x.shape[1], hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 1))
            opt = torch.optim.Adam(net.parameters(), lr=LEARNING_RATE, weight_decay=WEIGHT_DECAY)
            for _ in range(steps):
                opt.zero_grad()
                loss = torch.nn.functional.binary_cross_entropy_with_logits(net(x)[:, 0], y, pos_weight=weight)
                loss.backward()
                opt.step()
            layers.append([p.detach().double().numpy() for p in net.parameters()])
    w1, b1, w2, b2 = (np.stack([member[i] for member in layers]) for i in range(4))
    return HeadFit(centre, scale, w1, b1, w2[:, 0, :], b2[:, 0])


def exposure_score(stats: OODStats, inputs: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """The exposure score of head inputs [B, D] with predicted classes [B], float64 [B]."""
    head = stats.head
    assert head is not None
    value = committee(head, inputs)
    out = np.empty(len(value))
    for k in np.unique(predicted):
        where = predicted == k
        out[where] = surprise(head.reference[int(k)], value[where])
    return out


def references(values: np.ndarray, predicted: np.ndarray, classes: int) -> tuple[np.ndarray, ...]:
    """Per predicted class, the sorted head values (every picture's where a class has too few)."""
    pooled = np.sort(values)
    return tuple(np.sort(values[predicted == k]) if (predicted == k).sum() >= MIN_CLASS_REFERENCE else pooled
                 for k in range(classes))


def exposure_stats(base: OODStats, fitted: HeadFit, calibration: np.ndarray, logits: np.ndarray,
                   mean: Sequence[float], std: Sequence[float], percentile: float) -> OODStats:
    """The shipped statistics: the combined score's (``base``), the head, and its per-class
    references from held-out generated pictures' head inputs [N, D] and logits [N, K]."""
    predicted, classes = logits.argmax(1), logits.shape[1]
    head = HeadStats(HEAD_INPUTS, fitted.centre, fitted.scale, fitted.w1, fitted.b1, fitted.w2, fitted.b2,
                     np.asarray(mean, dtype=np.float64), np.asarray(std, dtype=np.float64),
                     references(committee(fitted, calibration), predicted, classes))
    threshold = float(-np.log(1 - percentile / 100))
    return replace(base, method="exposure", head=head, threshold=threshold, percentile=percentile)

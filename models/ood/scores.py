"""The scores read straight from one forward pass: energy, Mahalanobis, and the combined score.

* ``energy`` (Liu et al., 2020): minus the log-sum-exp of the logits. Familiar pictures
  give one confident, large logit (low energy); unfamiliar ones give small, flat logits.
  It needs no fitted statistics.
* ``combined``: three views of one forward pass, each turned into a surprise (-log of the
  share of held-out generated images at least as extreme) and added, Fisher's way of
  joining tests:
  - the energy of the logits: *what* the network thinks it sees;
  - a Gram-matrix deviation of conv1 (after Sastry & Oore, 2020): *how the picture looks*.
    For each conv1 channel the row sums of the p-th order Gram matrix
    (sum_j sum_xy a_i^p a_j^p)^(1/p), p = 1..5, must lie within the range seen on
    generated images of the predicted class; the score counts how far outside they fall.
    Photos have textures and shading the parts world never draws;
  - the Mahalanobis distance of conv5's spatial mean to the nearest class mean: *which
    parts* are present, whatever the class decision.
  The served request already captured conv1 and conv5 and has the logits, so it costs no
  second forward pass.
* ``mahalanobis`` (Lee et al., 2018): one Gaussian per class with a shared covariance,
  fitted to conv5 (averaged over space) and fc7 features of generated images; the score
  is the distance to the nearest class mean.

The threshold is a high percentile of the score on other generated images (stored with
the stats), so that share of familiar pictures passes, whatever the units of the score.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
from numpy.typing import ArrayLike
from torch import nn

from models.capture import capture
from models.ood.stats import GramStats, OODStats

FEATURE_LAYERS = ("features.11", "classifier.5")
GRAM_LAYERS = ("features.1",)  # conv1 after its ReLU: texture and colour statistics
GRAM_POWERS = (1, 2, 3, 4, 5)  # consecutive from 1: gram_rows builds each power from the last
PARTS_LAYER = "features.11"  # conv5 after its ReLU, averaged over space: which parts are present
COMBINED_LAYERS = (*GRAM_LAYERS, PARTS_LAYER)


@dataclass(frozen=True)
class Evidence:
    """What the combined score reads from a forward pass of B images."""

    logits: np.ndarray  # float64 [B, K]
    rows: dict[str, np.ndarray]  # Gram layer -> float64 [B, P*C]
    parts: np.ndarray  # float64 [B, C5]: conv5 averaged over space

    @classmethod
    def from_outputs(cls, logits: torch.Tensor, outputs: dict[str, torch.Tensor]) -> Evidence:
        """From logits [B, K] and captured maps (layer -> [B, C, H, W])."""
        return cls(logits.detach().double().numpy(), {layer: gram_rows(outputs[layer]) for layer in GRAM_LAYERS},
                   outputs[PARTS_LAYER].detach().double().mean(dim=(2, 3)).numpy())

    @classmethod
    def concat(cls, items: list[Evidence]) -> Evidence:
        return cls(np.concatenate([e.logits for e in items]),
                   {layer: np.concatenate([e.rows[layer] for e in items]) for layer in items[0].rows},
                   np.concatenate([e.parts for e in items]))


def features(network: nn.Module, batch: torch.Tensor) -> np.ndarray:
    """Normalized images [B, 3, H, W] -> float64 [B, D]: conv5 pooled over space, then fc7."""
    with torch.inference_mode(), capture(network, FEATURE_LAYERS) as outputs:
        network(batch)
    conv5 = outputs["features.11"].mean(dim=(2, 3))
    fc7 = outputs["classifier.5"].flatten(1)
    return torch.cat([conv5, fc7], dim=1).double().numpy()


def fit(feats: np.ndarray, labels: np.ndarray, shrinkage: float = 0.01) -> OODStats:
    """Class means and shared precision (a little shrinkage keeps it invertible)."""
    centre = feats.mean(axis=0)
    scale = feats.std(axis=0) + 1e-6
    z = (feats - centre) / scale
    classes = np.unique(labels)
    means = np.stack([z[labels == c].mean(axis=0) for c in classes])
    residual = z - means[np.searchsorted(classes, labels)]
    cov = residual.T @ residual / len(z)
    cov = (1 - shrinkage) * cov + shrinkage * np.eye(cov.shape[0]) * np.trace(cov) / cov.shape[0]
    return OODStats(centre, scale, means, np.linalg.inv(cov), float("inf"), 0.0, "")


def scores(stats: OODStats, feats: np.ndarray) -> np.ndarray:
    """Distance to the nearest class mean (larger: more unfamiliar), float64 [B]."""
    z = (feats - stats.centre) / stats.scale
    diff = z[:, None, :] - stats.means[None, :, :]  # [B, K, D]
    squared = np.einsum("bkd,de,bke->bk", diff, stats.precision, diff)
    return np.asarray(np.sqrt(np.maximum(squared.min(axis=1), 0.0)))


def calibrate(stats: OODStats, familiar: np.ndarray, percentile: float, sha256: str) -> OODStats:
    """Set the threshold at ``percentile`` of the scores of held-out familiar features."""
    threshold = float(np.percentile(scores(stats, familiar), percentile))
    return OODStats(stats.centre, stats.scale, stats.means, stats.precision, threshold, percentile, sha256)


def energy_of(logits: np.ndarray | torch.Tensor) -> np.ndarray:
    """Minus the log-sum-exp of logits [..., K] in float64, [...] (larger: more unfamiliar)."""
    return np.asarray((-torch.logsumexp(torch.as_tensor(logits).double(), dim=-1)).numpy())


def energy(network: nn.Module, batch: torch.Tensor) -> np.ndarray:
    """The energy of normalized images [B, 3, H, W], float64 [B]."""
    with torch.inference_mode():
        return energy_of(network(batch))


def energy_stats(familiar: np.ndarray, percentile: float, sha256: str) -> OODStats:
    """Energy needs only a threshold: ``percentile`` of held-out familiar energies."""
    empty = np.zeros(0)
    threshold = float(np.percentile(familiar, percentile))
    return OODStats(empty, empty, empty, empty, threshold, percentile, sha256, method="energy")


def gram_rows(maps: torch.Tensor) -> np.ndarray:
    """Post-ReLU maps [B, C, H, W] -> float64 [B, P*C]: per power p and channel i,
    (sum_j sum_xy a_i^p a_j^p)^(1/p), i.e. the p-th root of row i's sum of the Gram matrix."""
    flat = maps.detach().double().flatten(2)  # B x C x HW
    rows = []
    powered = flat.clone()
    for p in GRAM_POWERS:
        # a^p from a^(p-1) in place (the powers are 1, 2, 3...): no pow, and no fresh buffer per
        # power, whose page faults cost more than the arithmetic (tiny's conv1: 2.3 -> 1.0 ms).
        if p > 1:
            powered.mul_(flat)
        # sum_j G_ij = a_i^p . (sum_j a_j^p): one matrix-vector product instead of the full Gram.
        row = torch.bmm(powered, powered.sum(dim=1).unsqueeze(2)).squeeze(2)
        rows.append(row.clamp_min(0) ** (1.0 / p))
    return torch.cat(rows, dim=1).numpy()


def gram_fit(rows: dict[str, np.ndarray], predicted: np.ndarray, classes: int) -> tuple[dict[str, np.ndarray], ...]:
    """Per layer, per predicted class: the min and max of every Gram row sum.

    A class no image was predicted as gets the range over all images."""
    mins, maxs = {}, {}
    for layer, r in rows.items():
        groups = [r[predicted == k] if (predicted == k).any() else r for k in range(classes)]
        mins[layer] = np.stack([g.min(0) for g in groups])
        maxs[layer] = np.stack([g.max(0) for g in groups])
    return mins, maxs


def gram_deviation(mins: dict[str, np.ndarray], maxs: dict[str, np.ndarray], expected: dict[str, float] | None,
                   rows: dict[str, np.ndarray], predicted: np.ndarray) -> np.ndarray:
    """How far outside the class's ranges the row sums fall, relative to the range ends, summed;
    each layer divided by its expected deviation on generated images (when given)."""
    total = np.zeros(len(predicted))
    for layer, r in rows.items():
        lo, hi = mins[layer][predicted], maxs[layer][predicted]
        dev = (np.maximum(lo - r, 0) / (np.abs(lo) + 1e-6) + np.maximum(r - hi, 0) / (np.abs(hi) + 1e-6)).sum(1)
        total += dev / (expected[layer] if expected else 1.0)
    return total


def surprise(calibration: np.ndarray, values: np.ndarray, tail: float = 0.9) -> np.ndarray:
    """-log of the estimated share of familiar images scoring at least ``values``.

    Up to the ``tail`` quantile of the (sorted) calibration values, the empirical share
    (+1 in numerator and denominator). Beyond it, an exponential tail whose scale is the
    mean excess of the calibration values over that quantile (peaks over threshold), so
    pictures far past every familiar one keep ranking by how far, instead of all tying.
    """
    n = len(calibration)
    q = calibration[int(tail * (n - 1))]
    at_least = n - np.searchsorted(calibration, values, side="left")
    empirical = -np.log((at_least + 1) / (n + 1))
    excess = calibration[calibration > q] - q
    scale = float(excess.mean()) if len(excess) else 1.0
    at_q = -np.log((n - np.searchsorted(calibration, q, side="left") + 1) / (n + 1))
    return np.asarray(np.where(values > q, at_q + (values - q) / max(scale, 1e-12), empirical))


def evidence(network: nn.Module, batch: torch.Tensor) -> Evidence:
    """The combined score's inputs for normalized images [B, 3, H, W] (one forward pass)."""
    with torch.inference_mode(), capture(network, COMBINED_LAYERS) as outputs:
        logits = network(batch)
    return Evidence.from_outputs(logits, outputs)


def combined(stats: OODStats, seen: Evidence) -> np.ndarray:
    """The combined score: the three parts' surprises added, float64 [B]."""
    gram = stats.gram
    assert gram is not None
    deviation = gram_deviation(gram.mins, gram.maxs, gram.expected, seen.rows, seen.logits.argmax(1))
    return np.asarray(surprise(gram.energies, energy_of(seen.logits)) + surprise(gram.calibration, deviation)
                      + surprise(gram.distances, scores(stats, seen.parts)))


def combined_stats(fit_seen: Evidence, fit_labels: np.ndarray, reference: Evidence, held_out: Evidence,
                   percentile: float, sha256: str) -> OODStats:
    """Fit the Gram ranges (per predicted class) and the conv5 class Gaussians (per true
    class) on one set of generated images; the expected deviations and the three reference
    distributions on a second; the threshold (``percentile``) on a third."""
    mins, maxs = gram_fit(fit_seen.rows, fit_seen.logits.argmax(1), fit_seen.logits.shape[1])
    predicted = reference.logits.argmax(1)
    expected = {layer: float(gram_deviation(mins, maxs, None, {layer: r}, predicted).mean()) + 1e-9
                for layer, r in reference.rows.items()}
    deviation = gram_deviation(mins, maxs, expected, reference.rows, predicted)
    parts = fit(fit_seen.parts, fit_labels)
    gram = GramStats(mins, maxs, expected, np.sort(deviation), np.sort(energy_of(reference.logits)),
                     np.sort(scores(parts, reference.parts)))
    draft = replace(parts, percentile=percentile, weights_sha256=sha256, method="combined", gram=gram)
    return replace(draft, threshold=float(np.percentile(combined(draft, held_out), percentile)))


def auroc(negatives: ArrayLike, positives: ArrayLike) -> float:
    """Probability that a random positive (unfamiliar) scores above a random negative; ties 1/2."""
    neg = np.asarray(negatives, dtype=np.float64)
    pos = np.asarray(positives, dtype=np.float64)
    greater = (pos[:, None] > neg[None, :]).mean()
    ties = (pos[:, None] == neg[None, :]).mean()
    return float(greater + 0.5 * ties)

"""Is this picture unlike anything the tiny model was trained on? An unfamiliarity score.

Two scores are implemented; ``OODStats.method`` says which one a statistics file uses.

* ``energy`` (Liu et al., 2020): minus the log-sum-exp of the logits. Familiar pictures
  give one confident, large logit (low energy); unfamiliar ones give small, flat logits.
  It needs no fitted statistics. It is the shipped method: on held-out real photos it
  separated them from generated images far better than Mahalanobis (see
  models/weights/explain/README.md for the numbers and how the choice was made).
* ``mahalanobis`` (Lee et al., 2018): one Gaussian per class with a shared covariance,
  fitted to conv5 (averaged over space) and fc7 features of generated images; the score
  is the distance to the nearest class mean.

The threshold is a high percentile of the score on other generated images, so about 1 %
of familiar pictures are flagged, whatever the units of the score.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from numpy.typing import ArrayLike
from torch import nn

from models.capture import capture

FEATURE_LAYERS = ("features.11", "classifier.5")


@dataclass(frozen=True)
class OODStats:
    centre: np.ndarray  # float64 [D]: feature mean (for standardizing)
    scale: np.ndarray  # float64 [D]: feature std
    means: np.ndarray  # float64 [K, D]: class means of standardized features
    precision: np.ndarray  # float64 [D, D]: inverse of the shared covariance
    threshold: float
    percentile: float
    weights_sha256: str  # the tiny weights these statistics belong to
    method: str = "mahalanobis"  # or "energy" (then centre ... precision are unused)

    def save(self, path: Path) -> None:
        np.savez_compressed(
            path, centre=self.centre, scale=self.scale, means=self.means, precision=self.precision,
            threshold=self.threshold, percentile=self.percentile, weights_sha256=self.weights_sha256,
            method=self.method,
        )

    @classmethod
    def load(cls, path: Path) -> OODStats:
        with np.load(path) as data:
            return cls(
                data["centre"], data["scale"], data["means"], data["precision"],
                float(data["threshold"]), float(data["percentile"]), str(data["weights_sha256"]),
                str(data["method"]) if "method" in data else "mahalanobis",
            )


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


def energy(network: nn.Module, batch: torch.Tensor) -> np.ndarray:
    """Minus the log-sum-exp of the logits, float64 [B] (larger: more unfamiliar)."""
    with torch.inference_mode():
        logits = network(batch).double()
    return np.asarray((-torch.logsumexp(logits, dim=1)).numpy())


def energy_stats(familiar: np.ndarray, percentile: float, sha256: str) -> OODStats:
    """Energy needs only a threshold: ``percentile`` of held-out familiar energies."""
    empty = np.zeros(0)
    threshold = float(np.percentile(familiar, percentile))
    return OODStats(empty, empty, empty, empty, threshold, percentile, sha256, method="energy")


def score_batch(stats: OODStats, network: nn.Module, batch: torch.Tensor) -> np.ndarray:
    """The score ``stats.method`` defines, for normalized images [B, 3, H, W]."""
    if stats.method == "energy":
        return energy(network, batch)
    return scores(stats, features(network, batch))


def assess(
    stats: OODStats, network: nn.Module, tensor: torch.Tensor, logits: np.ndarray | None = None
) -> dict[str, float | bool]:
    """The API's ``ood`` field for one normalized image [3, H, W].

    ``logits``: the served network's logits for this image when the caller already has them;
    the energy score needs nothing else, so no second forward pass is run.
    """
    if stats.method == "energy" and logits is not None:
        score = float(-torch.logsumexp(torch.from_numpy(logits).double(), dim=0))
    else:
        score = float(score_batch(stats, network, tensor.unsqueeze(0))[0])
    return {"score": round(score, 4), "threshold": round(stats.threshold, 4), "unfamiliar": score > stats.threshold}


def auroc(negatives: ArrayLike, positives: ArrayLike) -> float:
    """Probability that a random positive (unfamiliar) scores above a random negative; ties 1/2."""
    neg = np.asarray(negatives, dtype=np.float64)
    pos = np.asarray(positives, dtype=np.float64)
    greater = (pos[:, None] > neg[None, :]).mean()
    ties = (pos[:, None] == neg[None, :]).mean()
    return float(greater + 0.5 * ties)

"""Is this picture unlike anything the tiny model was trained on? A Mahalanobis score.

Lee et al. (2018): fit one Gaussian per class, with one covariance shared by all classes,
to the network's features on generated images; an input's score is its Mahalanobis
distance to the nearest class mean. The features are the penultimate layer (fc7, after
its ReLU) and conv5 averaged over space, each standardized, then concatenated. The
threshold is a high percentile of the score on other generated images, so about 1 % of
familiar pictures are flagged, whatever the units of the score.
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

    def save(self, path: Path) -> None:
        np.savez_compressed(
            path, centre=self.centre, scale=self.scale, means=self.means, precision=self.precision,
            threshold=self.threshold, percentile=self.percentile, weights_sha256=self.weights_sha256,
        )

    @classmethod
    def load(cls, path: Path) -> OODStats:
        with np.load(path) as data:
            return cls(
                data["centre"], data["scale"], data["means"], data["precision"],
                float(data["threshold"]), float(data["percentile"]), str(data["weights_sha256"]),
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


def assess(stats: OODStats, network: nn.Module, tensor: torch.Tensor) -> dict[str, float | bool]:
    """The API's ``ood`` field for one normalized image [3, H, W]."""
    score = float(scores(stats, features(network, tensor.unsqueeze(0)))[0])
    return {"score": round(score, 4), "threshold": round(stats.threshold, 4), "unfamiliar": score > stats.threshold}


def auroc(negatives: ArrayLike, positives: ArrayLike) -> float:
    """Probability that a random positive (unfamiliar) scores above a random negative; ties 1/2."""
    neg = np.asarray(negatives, dtype=np.float64)
    pos = np.asarray(positives, dtype=np.float64)
    greater = (pos[:, None] > neg[None, :]).mean()
    ties = (pos[:, None] == neg[None, :]).mean()
    return float(greater + 0.5 * ties)

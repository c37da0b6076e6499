"""The fitted statistics of every unfamiliarity score, and how they are stored (one .npz).

``OODStats.method`` names the score a file holds (models/ood/__init__.py lists them); the
fields a method does not use stay empty. Every file names the sha256 of the weights it was
fitted for, and the server trusts it only for those weights (models/zoo/assets.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class GramStats:
    """The combined score's fitted parts (the Mahalanobis part lives in OODStats' fields)."""

    mins: dict[str, np.ndarray]  # layer -> float64 [K, P*C]: per predicted class, each Gram row sum's range
    maxs: dict[str, np.ndarray]
    expected: dict[str, float]  # layer -> mean deviation of held-out generated images
    calibration: np.ndarray  # sorted Gram deviations of held-out generated images
    energies: np.ndarray  # sorted energies of the same images
    distances: np.ndarray  # sorted conv5 Mahalanobis distances of the same images


@dataclass(frozen=True)
class HeadStats:
    """The exposure score's head: a committee of small two-layer networks over picture
    statistics and the combined score, and per predicted class the head's values on held-out
    generated pictures, against which a picture's value is turned into a surprise."""

    names: tuple[str, ...]  # the head's inputs, in column order (models/ood/pixels.py, then "combined")
    centre: np.ndarray  # float64 [D]: the familiar training pictures' mean of each input
    scale: np.ndarray  # float64 [D]: and their std
    w1: np.ndarray  # float64 [M, H, D]: M members, H hidden units
    b1: np.ndarray  # float64 [M, H]
    w2: np.ndarray  # float64 [M, H]
    b2: np.ndarray  # float64 [M]
    pixel_mean: np.ndarray  # float64 [3]: the model's normalization, to read the picture's own colours back
    pixel_std: np.ndarray  # float64 [3]
    reference: tuple[np.ndarray, ...]  # per predicted class: sorted head values of held-out generated pictures

    def arrays(self) -> dict[str, np.ndarray]:
        sizes = np.array([len(r) for r in self.reference])
        return {"head_names": np.array(self.names), "head_centre": self.centre, "head_scale": self.scale,
                "head_w1": self.w1, "head_b1": self.b1, "head_w2": self.w2, "head_b2": self.b2,
                "head_pixel_mean": self.pixel_mean, "head_pixel_std": self.pixel_std,
                "head_reference": np.concatenate(self.reference), "head_reference_sizes": sizes}

    @classmethod
    def from_arrays(cls, data: Any) -> HeadStats:
        bounds = np.cumsum(np.r_[0, data["head_reference_sizes"]])
        values = data["head_reference"]
        return cls(tuple(str(n) for n in data["head_names"]), data["head_centre"], data["head_scale"],
                   data["head_w1"], data["head_b1"], data["head_w2"], data["head_b2"], data["head_pixel_mean"],
                   data["head_pixel_std"], tuple(values[a:b] for a, b in pairwise(bounds)))


@dataclass(frozen=True)
class OODStats:
    centre: np.ndarray  # float64 [D]: feature mean (for standardizing)
    scale: np.ndarray  # float64 [D]: feature std
    means: np.ndarray  # float64 [K, D]: class means of standardized features
    precision: np.ndarray  # float64 [D, D]: inverse of the shared covariance
    threshold: float
    percentile: float
    weights_sha256: str  # the tiny weights these statistics belong to
    method: str = "mahalanobis"  # or "energy" (centre ... precision unused), "combined" or "exposure"
    gram: GramStats | None = None  # for "combined" and "exposure"
    head: HeadStats | None = None  # for "exposure"

    def save(self, path: Path) -> None:
        extra: dict[str, Any] = {}
        if self.gram is not None:
            for layer in self.gram.mins:
                extra[f"gram_min:{layer}"] = self.gram.mins[layer]
                extra[f"gram_max:{layer}"] = self.gram.maxs[layer]
                extra[f"gram_expected:{layer}"] = np.asarray(self.gram.expected[layer])
            extra["gram_calibration"] = self.gram.calibration
            extra["gram_energies"] = self.gram.energies
            extra["gram_distances"] = self.gram.distances
        if self.head is not None:
            extra.update(self.head.arrays())
        np.savez_compressed(
            path, centre=self.centre, scale=self.scale, means=self.means, precision=self.precision,
            threshold=self.threshold, percentile=self.percentile, weights_sha256=self.weights_sha256,
            method=self.method, **extra,
        )

    @classmethod
    def load(cls, path: Path) -> OODStats:
        with np.load(path) as data:
            gram = None
            if "gram_calibration" in data:
                layers = [k.split(":", 1)[1] for k in data.files if k.startswith("gram_min:")]
                gram = GramStats(
                    {layer: data[f"gram_min:{layer}"] for layer in layers},
                    {layer: data[f"gram_max:{layer}"] for layer in layers},
                    {layer: float(data[f"gram_expected:{layer}"]) for layer in layers},
                    data["gram_calibration"], data["gram_energies"], data["gram_distances"],
                )
            head = HeadStats.from_arrays(data) if "head_w1" in data else None
            return cls(
                data["centre"], data["scale"], data["means"], data["precision"],
                float(data["threshold"]), float(data["percentile"]), str(data["weights_sha256"]),
                str(data["method"]) if "method" in data else "mahalanobis", gram, head,
            )

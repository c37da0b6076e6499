"""The taught head: a linear softmax classifier on the base network's standardized features.

``logits = W @ ((a - mean) / std) + b`` for the pooled features ``a`` of a picture
(models/teach/features.py). Linear, not a small MLP, because it is as good where it matters
and it can say honestly which units it used: each logit is exactly a sum of one term per
unit plus the bias (models/teach/units.py). Measured on tiny, 30 examples a class, 200
fresh pictures a class: house/boat 98.0 % linear against 99.8 % with a 64-unit MLP, cat/face
96.5 against 97.8, crops of two photos (astronaut/coffee) 95.0 against 97.3; the pooled last
conv layer beat the penultimate layer on the photo crops (95.0 against 86.0 %), which is
what a webcam shows, and loses little on the parts world (98.0 against 100 %).

``std`` is floored (``MIN_STD``): a unit that never fired in the examples has std 0, and
its standardized value is then its raw difference from the mean instead of a division by 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MIN_STD = 1e-3


@dataclass(frozen=True)
class Head:
    """A taught head and what it was taught on."""

    classes: tuple[str, ...]
    base: str  # the base model's id
    layer: str  # the base layer whose pooled units are the features
    mean: np.ndarray  # float32 [units]
    std: np.ndarray  # float32 [units], at least MIN_STD
    weight: np.ndarray  # float32 [classes, units]
    bias: np.ndarray  # float32 [classes]

    @property
    def units(self) -> int:
        return int(self.mean.shape[0])

    def standardized(self, pooled: np.ndarray) -> np.ndarray:
        """``(a - mean) / std`` for features [B, units] (or one picture's [units])."""
        return ((pooled - self.mean) / self.std).astype(np.float32)

    def logits(self, pooled: np.ndarray) -> np.ndarray:
        """[B, classes] for pooled features [B, units]."""
        return (self.standardized(pooled) @ self.weight.T + self.bias).astype(np.float32)

    def probabilities(self, pooled: np.ndarray) -> np.ndarray:
        """The softmax of ``logits``, in float64 for the sum to be 1."""
        z = self.logits(pooled).astype(np.float64)
        z -= z.max(axis=-1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=-1, keepdims=True)


def standardization(pooled: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each unit's mean and (floored) std over the training examples [N, units]."""
    mean = pooled.mean(axis=0).astype(np.float32)
    std = np.maximum(pooled.std(axis=0), MIN_STD).astype(np.float32)
    return mean, std

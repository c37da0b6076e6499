"""Where the evidence for a taught class lies: Grad-CAM of the taught head, in closed form.

Grad-CAM (Selvaraju et al., 2017) weighs each unit's map by the spatial mean of the class
score's gradient with respect to it. For the taught head on average-pooled maps the score is
``logit_c = sum_k w[c, k] * (mean_ij A_kij - mean_k) / std_k + b[c]``, whose gradient with
respect to ``A_kij`` is ``w[c, k] / (std_k * h * w)`` at every position: the weights need no
backward pass, and the map is ``ReLU(sum_k w[c, k] / std_k * A_k)`` divided by its maximum
when that is positive (the constant ``1 / (h * w)`` cancels), as models/explain/gradcam.py
scales the base network's own. It shows what a taught class was learnt from: the mug, or the
table it stood on.
"""

from __future__ import annotations

import numpy as np

from models.teach.head import Head


def head_cam(head: Head, maps: np.ndarray, class_index: int) -> np.ndarray:
    """The map for class ``class_index`` from the head's base layer maps [units, h, w], in [0, 1]."""
    weights = head.weight[class_index] / head.std
    cam = np.maximum(np.tensordot(weights, maps, axes=1), 0.0)
    peak = float(cam.max())
    return (cam / peak if peak > 0 else cam).astype(np.float32)

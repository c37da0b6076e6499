"""Grad-CAM (Selvaraju et al., 2017): where in the picture the evidence for a class lies.

The channel weights are the spatial mean of the gradient of the class's pre-softmax score
with respect to the layer's activations; the map is the ReLU of the weighted channel sum,
divided by its maximum when that is positive. Autograd starts at the layer (see
models.capture.gradient_from), so nothing before it is differentiated.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from models.capture import gradient_from


def gradcam(
    network: nn.Module, tensor: torch.Tensor, layer: str, class_index: int | None = None
) -> tuple[np.ndarray, int]:
    """Grad-CAM of one image [3, H, W] (or [1, 3, H, W]) at ``layer``.

    Returns (map float32 [h, w] in [0, 1] at the layer's resolution, the class explained:
    ``class_index``, or the top prediction when it is None).
    """
    batch = tensor if tensor.dim() == 4 else tensor.unsqueeze(0)
    with gradient_from(network, layer) as leaf:
        logits = network(batch)
        index = int(logits[0].argmax()) if class_index is None else int(class_index)
        if not 0 <= index < logits.shape[1]:
            raise IndexError(f"class index {index} is outside 0..{logits.shape[1] - 1}")
        (grads,) = torch.autograd.grad(logits[0, index], leaf["activations"])
    activations = leaf["activations"].detach()[0]
    if activations.dim() != 3:
        raise ValueError(f"Grad-CAM needs a spatial layer; {layer} gives shape {list(activations.shape)}")
    weights = grads[0].mean(dim=(1, 2))
    cam = torch.relu((weights[:, None, None] * activations).sum(dim=0))
    peak = cam.max()
    if peak > 0:
        cam = cam / peak
    return cam.float().numpy(), index

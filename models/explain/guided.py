"""Guided backpropagation (Springenberg et al., 2015) from one unit back to the pixels.

The gradient of the unit's objective with respect to the input, where every ReLU passes
back only positive gradients through positive inputs: the picture's parts that excite the
unit, without the negative evidence that makes plain gradients noisy.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from torch import nn

from models.capture import guided_relus, live_outputs

Objective = Literal["max", "sum"]


def unit_objective(output: torch.Tensor, channel: int, objective: Objective) -> torch.Tensor:
    """The scalar to differentiate: the channel's largest activation, or all of it summed."""
    values = output[0, channel]
    return values.max() if objective == "max" else values.sum()


def guided_backprop(
    network: nn.Module, tensor: torch.Tensor, layer: str, channel: int, objective: Objective = "max"
) -> np.ndarray:
    """Guided-backprop gradient float32 [3, H, W] of unit ``channel`` of ``layer`` for one image."""
    image = tensor.detach().clone().unsqueeze(0).requires_grad_()
    # guided_relus first: its hook must rewrite a ReLU's output before live_outputs records it.
    with torch.enable_grad(), guided_relus(network), live_outputs(network, [layer]) as outputs:
        network(image)
        output = outputs[layer]
        if not 0 <= channel < output.shape[1]:
            raise IndexError(f"channel {channel} is outside 0..{output.shape[1] - 1}")
        (grad,) = torch.autograd.grad(unit_objective(output, channel, objective), image)
    return grad[0].float().numpy()

"""One forward pass with capture: the numbers every view of LayerScope is drawn from."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from models.capture import capture


@dataclass(frozen=True)
class Activations:
    """What the network computed for one image."""

    maps: dict[str, np.ndarray]  # layer name -> float32 output for this image (no batch axis)
    logits: np.ndarray  # float32 [classes]
    probabilities: np.ndarray  # softmax of the logits


def compute_activations(network: nn.Module, tensor: torch.Tensor, layers: Sequence[str]) -> Activations:
    """Run ``network`` on one preprocessed image [3, H, W] and keep ``layers``' outputs."""
    with torch.inference_mode(), capture(network, layers) as outputs:
        logits = network(tensor.unsqueeze(0))[0]
    probabilities = torch.softmax(logits.double(), dim=0).float()
    return Activations(
        maps={name: outputs[name][0].numpy() for name in layers},
        logits=logits.numpy(),
        probabilities=probabilities.numpy(),
    )

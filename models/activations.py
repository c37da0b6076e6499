"""One forward pass with capture: the numbers every view of LayerScope is drawn from."""

from __future__ import annotations

from collections.abc import Callable, Sequence
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
    return compute_batch(network, tensor.unsqueeze(0), layers)[0]


def compute_batch(
    network: nn.Module,
    batch: torch.Tensor,
    layers: Sequence[str],
    on_output: Callable[[str, torch.Tensor], None] | None = None,
) -> list[Activations]:
    """``compute_activations`` for a batch [B, 3, H, W]: one forward pass, one result per picture.

    The convolutions give every picture exactly its batch-1 output; matrix products over a
    batch may sum in another order, so logits can differ from batch 1 in the last float bits
    (about 1e-7 relative here; tests/app/test_inference.py holds them to 1e-5).
    ``on_output``: see models.capture.capture.
    """
    with torch.inference_mode(), capture(network, layers, on_output) as outputs:
        logits = network(batch)
    return [
        Activations(
            maps={name: outputs[name][i].numpy() for name in layers},
            logits=logits[i].numpy(),
            probabilities=torch.softmax(logits[i].double(), dim=0).float().numpy(),
        )
        for i in range(batch.shape[0])
    ]

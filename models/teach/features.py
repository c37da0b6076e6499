"""Frozen features of a base network: one layer's output, averaged over its map, per picture.

A taught head never changes the base network: it reads one layer of it. That layer is the
base entry's last spatial layer (``ModelEntry.cam_layer``: conv5 after its ReLU for the
AlexNet layout), each unit's map averaged over its positions, so feature ``k`` is unit
``k``'s mean activation and "which units a class leans on" names real units of the
network. The same pass gives the base network's own logits, so a prediction shows both.
A vector layer (a fully connected one) is taken as it is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from models.capture import capture

# Pictures per forward pass when many are extracted at once (the benchmark, the tests): large
# enough to amortize the pass, small enough to keep AlexNet's maps of a batch in tens of MiB.
BATCH = 32


@dataclass(frozen=True)
class Features:
    """What one pass gives per picture: the pooled layer and the base network's logits."""

    pooled: np.ndarray  # float32 [B, units]
    logits: np.ndarray  # float32 [B, base classes]
    maps: np.ndarray | None = None  # float32 [B, units, h, w] when asked for (the taught head's CAM)


def pool(output: torch.Tensor) -> torch.Tensor:
    """[B, C, H, W] -> [B, C] by averaging each map; [B, C] stays as it is."""
    return output.mean(dim=(2, 3)) if output.dim() == 4 else output.flatten(1)


def extract(network: nn.Module, batch: torch.Tensor, layer: str, keep_maps: bool = False) -> Features:
    """One forward pass of ``network`` on preprocessed pictures [B, 3, H, W]; ``keep_maps``: the
    layer's maps too (a spatial layer only)."""
    with torch.inference_mode(), capture(network, [layer]) as outputs:
        logits = network(batch)
    output = outputs[layer]
    maps = output.float().numpy() if keep_maps and output.dim() == 4 else None
    return Features(pool(output).float().numpy(), logits.float().numpy(), maps)


def extract_all(network: nn.Module, tensors: list[torch.Tensor], layer: str, batch: int = BATCH) -> Features:
    """``extract`` over many pictures, ``batch`` to a pass."""
    parts = [extract(network, torch.stack(tensors[i : i + batch]), layer) for i in range(0, len(tensors), batch)]
    return Features(np.concatenate([p.pooled for p in parts]), np.concatenate([p.logits for p in parts]))

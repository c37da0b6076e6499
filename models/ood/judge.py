"""One score for any statistics file: ``score_batch`` for many pictures, ``assess`` for the API.

``stats.method`` picks the score; ``served_layers`` says which captured maps it reads
besides the logits, so a request that captured them needs no second forward pass.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from models.capture import capture
from models.ood.exposure import exposure_score, head_inputs
from models.ood.scores import COMBINED_LAYERS, Evidence, combined, energy, energy_of, evidence, features, scores
from models.ood.stats import OODStats


def served_layers(stats: OODStats) -> tuple[str, ...] | None:
    """The maps the score reads beside the logits (and the picture itself); None when it runs
    a network pass of its own (Mahalanobis reads fc7, which a request rarely captures)."""
    return {"energy": (), "combined": COMBINED_LAYERS, "exposure": COMBINED_LAYERS}.get(stats.method)


def _exposure(stats: OODStats, batch: torch.Tensor, seen: Evidence) -> np.ndarray:
    head = stats.head
    assert head is not None
    inputs = head_inputs(stats, batch, seen, head.pixel_mean.tolist(), head.pixel_std.tolist())
    return exposure_score(stats, inputs, seen.logits.argmax(1))


def score_batch(stats: OODStats, network: nn.Module, batch: torch.Tensor) -> np.ndarray:
    """The score ``stats.method`` defines, for normalized images [B, 3, H, W]."""
    if stats.method == "energy":
        return energy(network, batch)
    if stats.method == "combined":
        return combined(stats, evidence(network, batch))
    if stats.method == "exposure":
        return _exposure(stats, batch, evidence(network, batch))
    return scores(stats, features(network, batch))


def scores_and_logits(stats: OODStats, network: nn.Module, batch: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """The score of normalized images [B, 3, H, W] and the logits of the same pass, float64."""
    layers = served_layers(stats)
    if layers is None:
        with torch.inference_mode():
            logits = network(batch).double().numpy()
        return score_batch(stats, network, batch), logits
    with torch.inference_mode(), capture(network, layers) as maps:
        out = network(batch)
    return _from_pass(stats, batch, out, maps), out.double().numpy()


def _from_pass(stats: OODStats, batch: torch.Tensor, logits: torch.Tensor, maps: dict[str, torch.Tensor]) -> np.ndarray:
    """The score from a pass's logits [B, K] and maps (``served_layers``' layers, [B, C, H, W])."""
    if stats.method == "energy":
        return energy_of(logits)
    seen = Evidence.from_outputs(logits, maps)
    return combined(stats, seen) if stats.method == "combined" else _exposure(stats, batch, seen)


def assess(
    stats: OODStats, network: nn.Module, tensor: torch.Tensor, logits: np.ndarray | None = None,
    maps: dict[str, torch.Tensor] | None = None,
) -> dict[str, float | bool]:
    """The API's ``ood`` field for one normalized image [3, H, W].

    ``logits`` and ``maps`` (layer -> [C, H, W]): what the served network already computed
    for this image. When they hold what the score needs, no second forward pass is run.
    """
    layers = served_layers(stats)
    if layers is not None and logits is not None and (not layers or (maps is not None and set(layers) <= set(maps))):
        given = torch.as_tensor(np.asarray(logits, dtype=np.float64))[None]
        score = float(_from_pass(stats, tensor.unsqueeze(0), given,
                                 {layer: torch.as_tensor((maps or {})[layer])[None] for layer in layers})[0])
    else:
        score = float(score_batch(stats, network, tensor.unsqueeze(0))[0])
    return {"score": round(score, 4), "threshold": round(stats.threshold, 4), "unfamiliar": score > stats.threshold}

"""Which units are edge or colour detectors: every unit's response to full-field gratings.

Luminance gratings at 8 orientations give an orientation selectivity index; chromatic
(isoluminant) gratings against luminance gratings of equal contrast give a colour index.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from models.analysis.concepts import layer_activations
from models.preprocess import standardize

ORIENTATIONS = [math.pi * k / 8 for k in range(8)]
PERIODS = (6.0, 12.0, 24.0, 48.0)
PHASES = [math.pi * k / 2 for k in range(4)]
# Luminance and 6 chromatic directions of equal RGB norm (0.6): chromatic ones are
# orthogonal to grey, so they change hue at constant mean intensity.
_NORM = 0.6
OSI_MIN = 0.5  # orientation-selective: orthogonal response at most a third of preferred
COLOUR_MIN = 1 / 3  # colour-selective: chromatic response at least twice the luminance one


def _grating(size: int, theta: float, period: float, phase: float, direction: Sequence[float]) -> torch.Tensor:
    """A full-field sine grating in [0, 1] RGB, modulated along an RGB ``direction``."""
    yy, xx = torch.meshgrid(torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32),
                            indexing="ij")
    wave = torch.sin(2 * math.pi * (xx * math.cos(theta) + yy * math.sin(theta)) / period + phase)
    d = torch.tensor(direction, dtype=torch.float32).view(3, 1, 1)
    return (0.5 + d * wave).clamp(0, 1)


def _directions() -> tuple[list[float], list[list[float]]]:
    lum = [_NORM / math.sqrt(3)] * 3
    e1 = np.array([1.0, -1.0, 0.0]) / math.sqrt(2)
    e2 = np.array([-1.0, -1.0, 2.0]) / math.sqrt(6)
    chroma = [list(_NORM * (math.cos(a) * e1 + math.sin(a) * e2)) for a in np.arange(6) * math.pi / 6]
    return lum, chroma


def gratings(size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """S x 3 x size x size gratings in [0, 1], whether each is a luminance one, and its orientation index."""
    lum, chroma = _directions()
    stims, tags = [], []
    for ti, th in enumerate(ORIENTATIONS):
        for per in PERIODS:
            for ph in PHASES:
                stims.append(_grating(size, th, per, ph, lum))
                tags.append(("lum", ti))
                for d in chroma[::2] if ti % 2 else chroma:  # fewer chromatic gratings suffice
                    stims.append(_grating(size, th, per, ph, d))
                    tags.append(("chroma", ti))
    is_lum = torch.tensor([t[0] == "lum" for t in tags])
    orient = torch.tensor([t[1] for t in tags])
    return torch.stack(stims), is_lum, orient


@torch.no_grad()
def selectivity(model: nn.Module, layers: dict[str, str], size: int, mean: Sequence[float],
                std: Sequence[float]) -> dict[str, dict[str, np.ndarray]]:
    """Per unit: orientation selectivity index, preferred orientation, colour index.

    Response = spatial mean of the unit's map. OSI = (r_pref - r_orth) / (r_pref + r_orth)
    with r(theta) the best response over periods and phases; colour index =
    (r_chroma - r_lum) / (r_chroma + r_lum) with each the best response over all gratings.
    """
    stims, is_lum, orient = gratings(size)
    acts = layer_activations(model, standardize(stims, mean, std), layers)
    out: dict[str, dict[str, np.ndarray]] = {}
    for title, a in acts.items():
        r = a.mean(dim=(2, 3))  # S x C
        r_or = torch.stack([r[is_lum & (orient == k)].max(0).values for k in range(len(ORIENTATIONS))])  # O x C
        pref = r_or.argmax(0)
        orth = (pref + len(ORIENTATIONS) // 2) % len(ORIENTATIONS)
        rp = r_or.gather(0, pref.view(1, -1))[0]
        ro = r_or.gather(0, orth.view(1, -1))[0]
        osi = (rp - ro) / (rp + ro).clamp(min=1e-8)
        rl, rc = r[is_lum].max(0).values, r[~is_lum].max(0).values
        col = (rc - rl) / (rc + rl).clamp(min=1e-8)
        alive = (rp > 1e-6) | (rc > 1e-6)
        out[title] = {
            "osi": np.where(alive.numpy(), osi.numpy(), 0.0),
            "preferred_deg": (pref.numpy() * 180.0 / len(ORIENTATIONS)),
            "colour": np.where(alive.numpy(), col.numpy(), 0.0),
        }
    return out

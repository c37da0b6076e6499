"""Grating probes read orientation and colour selectivity right from hand-made filters."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from models.analysis.selectivity import selectivity

MEAN, STD = [0.5, 0.5, 0.5], [0.25, 0.25, 0.25]


def _probe(weight: torch.Tensor) -> dict[str, np.ndarray]:
    conv = nn.Conv2d(3, weight.shape[0], weight.shape[-1], padding=weight.shape[-1] // 2)
    with torch.no_grad():
        conv.weight.copy_(weight)
        assert conv.bias is not None
        conv.bias.zero_()
    return selectivity(nn.Sequential(conv, nn.ReLU()), {"c": "1"}, 48, MEAN, STD)["c"]


def test_gratings_find_orientation_and_colour() -> None:
    k = 7
    xs = torch.arange(k, dtype=torch.float32) - k // 2
    edge = torch.sin(2 * math.pi * xs / 6.0).view(1, k).expand(k, k)  # varies along x only
    vertical = edge.expand(3, k, k)  # luminance, vertical stripes
    horizontal = edge.t().expand(3, k, k)
    red_green = torch.zeros(3, k, k)
    red_green[0, k // 2, k // 2], red_green[1, k // 2, k // 2] = 1.0, -1.0  # colour-opponent point
    grey_blob = torch.zeros(3, k, k)
    grey_blob[:, k // 2, k // 2] = 1.0  # luminance, no orientation
    r = _probe(torch.stack([vertical, horizontal, red_green, grey_blob]))
    assert r["osi"][0] > 0.8 and r["preferred_deg"][0] == 0.0
    assert r["osi"][1] > 0.8 and r["preferred_deg"][1] == 90.0
    assert r["colour"][2] > 0.5 and r["osi"][2] < 0.5
    assert r["colour"][3] < 0.0 and r["osi"][3] < 0.5
    assert r["colour"][0] < 0.0

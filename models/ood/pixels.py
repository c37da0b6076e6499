"""Statistics of a picture's own pixels that tell a photograph from a parts-world drawing.

The parts world paints flat, saturated colours with sharp edges, over linear gradients,
stripes or smoothed colour noise, then sometimes blurs and adds per-channel noise. Photos
differ in ways that show before any network looks:

* their fine detail is mostly a change of brightness, not of hue (``chroma_hf``: the share
  of high-frequency energy in the two colour-opponent channels; a grey photo has none);
* their edges and shading change a colour's brightness while keeping its hue
  (``shading``: the share of gradient energy along the pixel's own colour vector);
* their gradients spread over every strength, where a drawing has flat regions and edges
  (``gradient<i>``: a histogram of luminance gradient magnitudes);
* each of these at three scales (the picture, and averaged 2 x 2 and 4 x 4), plus
  saturation, colour variance, the kurtosis of fine detail, the power spectrum in four
  frequency bands, and the share of near-black and near-white pixels.

Shares are returned as logits (clipped at 1e-4), the rest as they are, one row per picture.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

SCALES = (1, 2, 4)
GRADIENT_EDGES = (0.0, 0.004, 0.01, 0.02, 0.04, 0.08, 0.16, float("inf"))  # luminance steps, 0..1
LOW_SATURATION = (0.05, 0.15, 0.3)
SPECTRUM_BANDS = ((0.02, 0.05), (0.05, 0.12), (0.12, 0.3), (0.3, 0.5))  # cycles per pixel
DARK, BRIGHT = 0.08, 0.92
SHARE_CLIP = 1e-4


def _names() -> tuple[tuple[str, ...], tuple[bool, ...]]:
    """Every statistic's name and whether it is a share (given as a logit)."""
    named: list[tuple[str, bool]] = []
    for s in SCALES:
        named += [(f"chroma_hf_{s}", True), (f"shading_{s}", True)]
        named += [(f"gradient{i}_{s}", True) for i in range(len(GRADIENT_EDGES) - 1)]
    named += [(f"low_saturation_{t}", True) for t in LOW_SATURATION]
    named += [("mean_saturation", False), ("chroma_variance", False), ("kurtosis_hf", False)]
    named += [(f"spectrum{i}", False) for i in range(len(SPECTRUM_BANDS))]
    named += [("dark", True), ("bright", True)]
    return tuple(n for n, _ in named), tuple(s for _, s in named)


PIXEL_NAMES, _SHARE = _names()
_INNER_EDGES = torch.tensor(GRADIENT_EDGES[1:-1], dtype=torch.float64)


def _box(x: torch.Tensor) -> torch.Tensor:
    """3 x 3 mean with the border replicated, [B, C, H, W] -> the same shape."""
    return F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), 3, stride=1)


def _opponent(rgb: torch.Tensor) -> torch.Tensor:
    """RGB [B, 3, H, W] -> orthonormal luminance and two colour-opponent channels."""
    r, g, b = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    return torch.stack([(r + g + b) / 3 ** 0.5, (r - g) / 2 ** 0.5, (r + g - 2 * b) / 6 ** 0.5], dim=1)


def _chroma_hf(rgb: torch.Tensor) -> torch.Tensor:
    o = _opponent(rgb)
    energy = ((o - _box(o)) ** 2).mean(dim=(2, 3))
    return (energy[:, 1] + energy[:, 2]) / (energy.sum(1) + 1e-12)


def _shading(rgb: torch.Tensor) -> torch.Tensor:
    """Share of gradient energy along the local colour: (g . c)^2 / |c|^2 over |g|^2."""
    along = total = torch.zeros(rgb.shape[0], dtype=rgb.dtype)
    for dim in (2, 3):
        n = rgb.shape[dim]
        a, b = rgb.narrow(dim, 1, n - 1), rgb.narrow(dim, 0, n - 1)
        g, c = a - b, a + b  # the step, and twice the colour it is taken at
        along = along + ((g * c).sum(1) ** 2 / ((c * c).sum(1) + 1e-6)).sum(dim=(1, 2))
        total = total + (g * g).sum(dim=(1, 2, 3))
    return along / (total + 1e-12)


def _gradients(luminance: torch.Tensor) -> list[torch.Tensor]:
    steps = torch.cat([(luminance[:, :, 1:] - luminance[:, :, :-1]).abs().flatten(1),
                       (luminance[:, 1:, :] - luminance[:, :-1, :]).abs().flatten(1)], dim=1)
    bins = torch.bucketize(steps, _INNER_EDGES.to(steps.dtype), right=True)  # 0 .. len(edges) - 2
    counts = torch.zeros(steps.shape[0], len(GRADIENT_EDGES) - 1, dtype=steps.dtype)
    counts.scatter_add_(1, bins, torch.ones_like(steps))
    return list((counts / steps.shape[1]).unbind(1))


def _spectrum(luminance: torch.Tensor) -> list[torch.Tensor]:
    """Log mean power of the luminance in each band of SPECTRUM_BANDS."""
    centred = luminance - luminance.mean(dim=(1, 2), keepdim=True)
    power = torch.fft.rfft2(centred).abs() ** 2
    h, w = luminance.shape[1:]
    radius = (torch.fft.fftfreq(h)[:, None] ** 2 + torch.fft.rfftfreq(w)[None, :] ** 2).sqrt()
    return [torch.log(power[:, (radius >= lo) & (radius < hi)].double().mean(1) + 1e-12) for lo, hi in SPECTRUM_BANDS]


def _kurtosis(x: torch.Tensor) -> torch.Tensor:
    flat = x.flatten(1)
    flat = flat - flat.mean(1, keepdim=True)
    return (flat ** 4).mean(1) / ((flat ** 2).mean(1) ** 2 + 1e-12)


def raw_statistics(rgb: torch.Tensor) -> list[torch.Tensor]:
    """Pictures in [0, 1], float [B, 3, H, W] -> each of PIXEL_NAMES as [B], before the logits."""
    out: list[torch.Tensor] = []
    for s in SCALES:
        pooled = F.avg_pool2d(rgb, s) if s > 1 else rgb
        out += [_chroma_hf(pooled), _shading(pooled), *_gradients(pooled.mean(1))]
    top, bottom = rgb.amax(1), rgb.amin(1)
    saturation = (top - bottom) / (top + 1e-3)
    out += [((saturation < t) & (top > DARK)).to(rgb.dtype).mean(dim=(1, 2)) for t in LOW_SATURATION]
    variance = _opponent(rgb).var(dim=(2, 3))
    luminance = rgb.mean(1, keepdim=True)
    out += [saturation.mean(dim=(1, 2)), (variance[:, 1] + variance[:, 2]) / (variance.sum(1) + 1e-12),
            _kurtosis(luminance - _box(luminance)), *_spectrum(luminance[:, 0])]
    out += [(top < DARK).to(rgb.dtype).mean(dim=(1, 2)), (bottom > BRIGHT).to(rgb.dtype).mean(dim=(1, 2))]
    return out


def pixel_statistics(batch: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """Normalized pictures [B, 3, H, W] (the network's input) -> float64 [B, len(PIXEL_NAMES)]."""
    x = batch.detach().float()
    m = torch.tensor(list(mean), dtype=torch.float32).view(1, 3, 1, 1)
    s = torch.tensor(list(std), dtype=torch.float32).view(1, 3, 1, 1)
    columns = []
    for value, share in zip(raw_statistics((x * s + m).clamp(0, 1)), _SHARE, strict=True):
        v = value.double().numpy()
        if share:
            p = np.clip(v, SHARE_CLIP, 1 - SHARE_CLIP)
            v = np.log(p / (1 - p))
        columns.append(v)
    return np.stack(columns, axis=1)

"""Feature visualization by activation maximization (Olah et al., Distill 2017).

Optimizing raw pixels to excite a unit gives adversarial high-frequency noise. Three
regularizers make the result readable:

* parametrization: the image is the inverse FFT of a spectrum scaled by 1/frequency, in a
  decorrelated colour space, squashed by a sigmoid, so gradient steps favour large,
  smooth structures (Lucid's ``fft_image`` + ``to_valid_rgb``);
* transformation robustness: each step sees the image padded, jittered by a few pixels,
  rescaled by up to 10 % and jittered again, so a pattern must work wherever it lands;
* the objective is the unit's pre-ReLU value at the centre of its map, so a dead unit
  still has a gradient.

Units of one layer are optimized together as one batch (one image per unit).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from models.capture import live_outputs
from models.preprocess import normalize, standardize
from models.units import pre_activation

# Lucid's square root of ImageNet's colour correlation matrix: sampling decorrelated
# channels and mixing them with it gives natural colour statistics.
_COLOR = torch.tensor([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]])
_COLOR = _COLOR / _COLOR.norm(dim=0).max()


@dataclass(frozen=True)
class VisConfig:
    size: int = 64
    steps: int = 160
    lr: float = 0.05
    pad: int = 6
    jitter: int = 4
    scales: tuple[float, ...] = (0.9, 0.95, 1.0, 1.05, 1.1)
    decay: float = 1.0  # spectrum falls off as 1 / frequency ** decay
    seed: int = 0
    # Std of the starting spectrum. Lucid's 0.01 starts from an almost flat grey picture
    # (pixel std under 1/255); a network whose first layer is silent on flat input (trained
    # without BatchNorm: conv1 biases at or below zero) then passes no gradient to conv2 or
    # conv3 and the picture never moves. 0.1 starts from a faint texture (std ~7/255).
    init: float = 0.1


def _frequency_scale(size: int, decay: float) -> torch.Tensor:
    fy = torch.fft.fftfreq(size)[:, None]
    fx = torch.fft.rfftfreq(size)[None, :]
    freqs = torch.sqrt(fy**2 + fx**2)
    return 1.0 / torch.clamp(freqs, min=1.0 / size) ** decay


def to_rgb(spectrum: torch.Tensor, size: int, decay: float) -> torch.Tensor:
    """Spectrum parameters [B, 3, size, size//2+1, 2] -> images [B, 3, size, size] in (0, 1)."""
    scaled = torch.view_as_complex(spectrum) * _frequency_scale(size, decay)
    decorrelated = torch.fft.irfft2(scaled, s=(size, size), norm="ortho") / 4.0
    mixed = torch.einsum("bchw,dc->bdhw", decorrelated, _COLOR)
    return torch.sigmoid(mixed)


def _transform(images: torch.Tensor, config: VisConfig, rng: torch.Generator) -> torch.Tensor:
    def jitter(x: torch.Tensor) -> torch.Tensor:
        dy, dx = (int(v) for v in torch.randint(-config.jitter, config.jitter + 1, (2,), generator=rng))
        return torch.roll(x, shifts=(dy, dx), dims=(2, 3))

    x = F.pad(images, [config.pad] * 4, mode="constant", value=0.5)
    x = jitter(x)
    scale = config.scales[int(torch.randint(len(config.scales), (1,), generator=rng))]
    if scale != 1.0:
        side = max(8, round(x.shape[-1] * scale))
        x = F.interpolate(x, size=(side, side), mode="bilinear", align_corners=False)
    return jitter(x)


class Visualization:
    """An activation-maximization run that can be advanced a few steps at a time.

    The server runs on-demand visualizations in short slices on its one inference thread,
    so other pictures are served between the slices instead of waiting for the whole run.
    Stepping in slices gives exactly the images one uninterrupted run gives.
    """

    def __init__(self, network: nn.Module, layer: str, channels: Sequence[int],
                 mean: Sequence[float], std: Sequence[float], config: VisConfig | None = None) -> None:
        self.network = network
        self.config = config or VisConfig()
        self.target = pre_activation(network, layer)
        self.rng = torch.Generator().manual_seed(self.config.seed)
        shape = (len(channels), 3, self.config.size, self.config.size // 2 + 1, 2)
        self.spectrum = (self.config.init * torch.randn(shape, generator=self.rng)).requires_grad_()
        self.optimizer = torch.optim.Adam([self.spectrum], lr=self.config.lr)
        self.mean, self.std = list(mean), list(std)
        self.index = torch.arange(len(channels))
        self.chosen = torch.tensor(list(channels))
        self.steps_done = 0

    @property
    def finished(self) -> bool:
        return self.steps_done >= self.config.steps

    def step(self, count: int) -> bool:
        """Run up to ``count`` more optimization steps; True once all steps are done."""
        config = self.config
        with torch.enable_grad():
            for _ in range(min(count, config.steps - self.steps_done)):
                images = _transform(to_rgb(self.spectrum, config.size, config.decay), config, self.rng)
                with live_outputs(self.network, [self.target]) as outputs:
                    self.network(standardize(images, self.mean, self.std))
                values = outputs[self.target][self.index, self.chosen]
                if values.dim() == 3:  # a map: the centre unit, so the pattern is whole and centred
                    values = values[:, values.shape[1] // 2, values.shape[2] // 2]
                loss = -values.sum()
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
                self.steps_done += 1
        return self.finished

    def pixels(self) -> np.ndarray:
        """The current images: uint8 [units, size, size, 3]."""
        with torch.no_grad():
            final = to_rgb(self.spectrum, self.config.size, self.config.decay)
        pixels = np.rint(final.permute(0, 2, 3, 1).numpy() * 255).clip(0, 255).astype(np.uint8)
        return np.ascontiguousarray(pixels)


def visualize(network: nn.Module, layer: str, channels: Sequence[int], mean: Sequence[float],
              std: Sequence[float], config: VisConfig | None = None) -> np.ndarray:
    """One image per unit of ``layer`` that excites it: uint8 [len(channels), size, size, 3]."""
    run = Visualization(network, layer, channels, mean, std, config)
    run.step(run.config.steps)
    return run.pixels()


def centre_activation(
    network: nn.Module,
    layer: str,
    channels: Sequence[int],
    images: np.ndarray,
    mean: Sequence[float],
    std: Sequence[float],
) -> np.ndarray:
    """Activation of unit ``channels[i]`` of ``layer`` at its map's centre for image i.

    ``images`` is uint8 [N, S, S, 3] (what :func:`visualize` returns); float32 [N].
    """
    x = normalize(images, mean, std)
    with torch.inference_mode(), live_outputs(network, [layer]) as outputs:
        network(x)
    out = outputs[layer]
    values = out[torch.arange(len(images)), torch.tensor(list(channels))]
    if values.dim() == 3:
        values = values[:, values.shape[1] // 2, values.shape[2] // 2]
    return values.float().numpy()

"""Network definitions: MiniAlexNet (ours) and the torchvision AlexNet adapter.

MiniAlexNet keeps torchvision AlexNet's exact module layout (``features``, ``avgpool``,
``classifier`` and the same indices inside them), so every layer name, stage and tool
works the same for both models. Only widths, the first convolution's geometry and the
input size differ; they travel with the weights as a :class:`NetConfig`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn
from torchvision.models import alexnet as tv_alexnet


@dataclass(frozen=True)
class NetConfig:
    """Everything needed to rebuild a MiniAlexNet before loading its weights."""

    num_classes: int = 11
    widths: tuple[int, int, int, int, int] = (48, 96, 128, 128, 96)
    conv1_kernel: int = 11
    conv1_stride: int = 4
    conv1_padding: int = 2
    hidden: int = 256
    dropout: float = 0.5
    pool_output: int = 3
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The config as JSON-ready data, as stored next to the weights."""
        data = asdict(self)
        data["widths"] = list(self.widths)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NetConfig:
        """The config stored with some weights; keys this version does not know are ignored."""
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        if "widths" in known:
            known["widths"] = tuple(known["widths"])
        return cls(**known)


class MiniAlexNet(nn.Module):
    """AlexNet's layout with narrower channels, for the parts world.

    Indices match torchvision's AlexNet: conv layers at features.0/3/6/8/10, their ReLUs
    at features.1/4/7/9/11, max-pooling at features.2/5/12.
    """

    def __init__(self, config: NetConfig | None = None) -> None:
        super().__init__()
        self.config = config or NetConfig()
        c1, c2, c3, c4, c5 = self.config.widths
        cfg = self.config
        self.features = nn.Sequential(
            nn.Conv2d(3, c1, cfg.conv1_kernel, stride=cfg.conv1_stride, padding=cfg.conv1_padding),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(c1, c2, kernel_size=5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(c2, c3, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(c3, c4, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(c4, c5, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((cfg.pool_output, cfg.pool_output))
        flat = c5 * cfg.pool_output * cfg.pool_output
        self.classifier = nn.Sequential(
            nn.Dropout(p=cfg.dropout),
            nn.Linear(flat, cfg.hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(p=cfg.dropout),
            nn.Linear(cfg.hidden, cfg.hidden),
            nn.ReLU(inplace=True),
            nn.Linear(cfg.hidden, cfg.num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for a batch of preprocessed images [B, 3, H, W]."""
        x = self.features(x)
        x = self.avgpool(x)
        x = torch.flatten(x, 1)
        return self.classifier(x)


def build_alexnet(num_classes: int = 1000) -> nn.Module:
    """torchvision's AlexNet with no weights; the registry loads them from a resolved file."""
    return tv_alexnet(weights=None, num_classes=num_classes)

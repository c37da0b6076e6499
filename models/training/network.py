"""The network while it trains: He initialization, optional BatchNorm, and the shipped network folded out of it.

With BatchNorm (``--batchnorm``) each convolution is followed by one while training, and
:func:`fold_batchnorm` folds it into the convolution's weights, so what ships is exactly a
:class:`~models.nets.MiniAlexNet`; without, the MiniAlexNet trains as it is.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from models.nets import MiniAlexNet
from models.preprocess import MEAN, STD, normalize


def he_init(net: MiniAlexNet) -> None:
    """Initialization for training without BatchNorm: He for every layer followed by a ReLU,
    so activations keep their scale through the depth, and zero biases."""
    weighted = [m for m in [*net.features, *net.classifier] if isinstance(m, nn.Conv2d | nn.Linear)]
    with torch.no_grad():
        for layer in weighted[:-1]:
            nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
        # Small logits at the start: a first step cannot then push every ReLU dead.
        nn.init.normal_(weighted[-1].weight, std=0.01)
        for layer in weighted:
            assert layer.bias is not None
            layer.bias.zero_()


class BNTrainNet(nn.Module):
    """MiniAlexNet with BatchNorm after each conv, sharing the MiniAlexNet's modules.

    With ``batchnorm=False`` it is the MiniAlexNet itself (initialize it with :func:`he_init`).
    """

    def __init__(self, net: MiniAlexNet, batchnorm: bool = True) -> None:
        super().__init__()
        self.net = net
        layers: list[nn.Module] = []
        self.bns = nn.ModuleList()
        for mod in net.features:
            layers.append(mod)
            if batchnorm and isinstance(mod, nn.Conv2d):
                bn = nn.BatchNorm2d(mod.out_channels)
                self.bns.append(bn)
                layers.append(bn)
        self.features = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = self.net.avgpool(x)
        return self.net.classifier(torch.flatten(x, 1))

    def forward_tapped(self, x: torch.Tensor, conv: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The logits and the maps of conv layer ``conv`` (1-5) after its ReLU."""
        tapped: torch.Tensor | None = None
        seen = 0
        for mod in self.features:
            x = mod(x)
            if isinstance(mod, nn.Conv2d):
                seen += 1
            elif isinstance(mod, nn.ReLU) and seen == conv and tapped is None:
                tapped = x  # later layers make new tensors, so this one stays as it is
        assert tapped is not None, f"no conv layer {conv}"
        x = self.net.avgpool(x)
        return self.net.classifier(torch.flatten(x, 1)), tapped


def fold_batchnorm(model: BNTrainNet) -> MiniAlexNet:
    """A MiniAlexNet computing the same function in eval mode: BN folded into conv.

    conv(x)*g/sqrt(v+eps) + (b - m)*g/sqrt(v+eps) + beta, so w' = w*k, b' = (b-m)*k + beta.
    """
    src = model.net
    folded = MiniAlexNet(src.config)
    folded.load_state_dict(src.state_dict())
    convs = [m for m in folded.features if isinstance(m, nn.Conv2d)]
    if not model.bns:  # trained without BatchNorm: nothing to fold
        return folded.eval()
    with torch.no_grad():
        for conv, bn in zip(convs, model.bns, strict=True):
            assert isinstance(bn, nn.BatchNorm2d) and bn.running_var is not None and bn.running_mean is not None
            k = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            conv.weight.mul_(k.view(-1, 1, 1, 1))
            assert conv.bias is not None
            conv.bias.copy_((conv.bias - bn.running_mean) * k + bn.bias)
    return folded.eval()


@torch.no_grad()
def predict(model: nn.Module, images: np.ndarray, batch: int = 128) -> np.ndarray:
    """Class indices for uint8 NHWC images."""
    model.eval()
    out = []
    for i in range(0, len(images), batch):
        x = normalize(images[i:i + batch], MEAN, STD)
        out.append(model(x).argmax(1).numpy())
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)

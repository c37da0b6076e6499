"""The network while it trains: a few steps lower the loss, He init keeps scale, BatchNorm folds exactly."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from torch import nn

from models import world
from models.nets import MiniAlexNet, NetConfig
from models.preprocess import MEAN, STD, normalize
from models.training.network import BNTrainNet, fold_batchnorm, he_init
from tests.models.training.conftest import TINY


def test_a_few_steps_lower_the_loss() -> None:
    torch.manual_seed(0)
    model = BNTrainNet(MiniAlexNet(replace(TINY, dropout=0.0).net_config()))
    images, labels, _ = world.generate_batch(1, 0, 22, 64)
    x = normalize(images, MEAN, STD)
    y = torch.from_numpy(labels)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    model.train()
    losses = []
    for _ in range(15):
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0], losses


def test_folded_batchnorm_computes_the_same_function() -> None:
    torch.manual_seed(1)
    model = BNTrainNet(MiniAlexNet(NetConfig(widths=(4, 6, 6, 6, 5), conv1_kernel=5, conv1_stride=2, hidden=8)))
    with torch.no_grad():  # BN statistics far from the identity, so folding matters
        for bn in model.bns:
            assert isinstance(bn, nn.BatchNorm2d)
            assert bn.running_mean is not None and bn.running_var is not None
            bn.running_mean.uniform_(-1, 1)
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.5, 0.5)
    model.eval()
    folded = fold_batchnorm(model)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    x = torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(model(x), folded(x), atol=1e-4)


def test_without_batchnorm_the_trained_net_is_the_shipped_net() -> None:
    torch.manual_seed(2)
    net = MiniAlexNet(NetConfig(widths=(4, 6, 6, 6, 5), conv1_kernel=5, conv1_stride=2, hidden=8))
    he_init(net)
    model = BNTrainNet(net, batchnorm=False)
    assert len(model.bns) == 0 and not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    convs = [m for m in net.features if isinstance(m, nn.Conv2d)]
    # He initialization: weight variance 2 / fan-in, so ReLU activations keep their scale.
    fan_in = convs[2].weight[0].numel()
    assert abs(convs[2].weight.var().item() * fan_in / 2 - 1) < 0.25
    last = net.classifier[-1]
    assert isinstance(last, nn.Linear) and last.weight.std().item() < 0.02 and not last.bias.any()
    model.eval()
    folded = fold_batchnorm(model)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model(x), folded(x)) and torch.equal(net(x), folded(x))


def test_tapped_forward_gives_the_logits_and_the_layers_maps() -> None:
    torch.manual_seed(3)
    net = MiniAlexNet(NetConfig(widths=(4, 6, 6, 7, 5), conv1_kernel=5, conv1_stride=2, hidden=8))
    he_init(net)
    model = BNTrainNet(net, batchnorm=False).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        logits, maps = model.forward_tapped(x, 4)
        assert torch.equal(logits, net(x))
        # conv4's ReLU is features.9 in torchvision AlexNet's layout.
        assert torch.equal(maps, net.features[:10](x))
        _, maps2 = model.forward_tapped(x, 2)
        assert torch.equal(maps2, net.features[:5](x))
    with pytest.raises(AssertionError):
        model.forward_tapped(x, 6)

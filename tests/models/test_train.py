"""Training: a few steps lower the loss, BatchNorm folds exactly, a tiny run writes everything."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from models import train, world
from models.nets import MiniAlexNet, NetConfig
from models.tinyweights import META_KEYS, load_checkpoint, load_tiny

TINY = train.TrainConfig(input_size=64, steps=6, batch_size=22, widths=(8, 8, 8, 8, 8), conv1_kernel=5,
                         conv1_stride=2, hidden=16, workers=0, threads=1, val_images=22, val_every=3)


def test_a_few_steps_lower_the_loss() -> None:
    torch.manual_seed(0)
    model = train.BNTrainNet(MiniAlexNet(replace(TINY, dropout=0.0).net_config()))
    images, labels, _ = world.generate_batch(1, 0, 22, 64)
    x = train.normalize(torch.from_numpy(images).permute(0, 3, 1, 2))
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
    model = train.BNTrainNet(MiniAlexNet(NetConfig(widths=(4, 6, 6, 6, 5), conv1_kernel=5, conv1_stride=2, hidden=8)))
    with torch.no_grad():  # BN statistics far from the identity, so folding matters
        for bn in model.bns:
            assert isinstance(bn, nn.BatchNorm2d)
            assert bn.running_mean is not None and bn.running_var is not None
            bn.running_mean.uniform_(-1, 1)
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.5, 0.5)
    model.eval()
    folded = train.fold_batchnorm(model)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    x = torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(model(x), folded(x), atol=1e-4)


def test_schedule_warms_up_then_decays() -> None:
    cfg = replace(TINY, steps=100, lr=0.1, warmup_fraction=0.1)
    assert train.lr_at(0, cfg) < train.lr_at(9, cfg) == 0.1
    assert train.lr_at(99, cfg) < 0.01
    assert train.checkpoint_steps(1000) == {"init": 0, "1pct": 10, "10pct": 100, "final": 1000}


def test_tiny_run_writes_weights_metadata_and_snapshots(tmp_path) -> None:
    cfg = replace(TINY, out_dir=str(tmp_path))
    meta = train.train(cfg, progress=False)
    assert tuple(json.loads((tmp_path / "tiny.json").read_text())) == META_KEYS
    model, loaded = load_tiny(tmp_path)
    assert loaded["sha256"] == meta["sha256"] and loaded["input_size"] == 64
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert [c["name"] for c in meta["checkpoints"]] == ["init", "1pct", "10pct", "final"]
    for c in meta["checkpoints"]:
        snap = load_checkpoint(tmp_path / c["file"])
        assert isinstance(snap, MiniAlexNet)
    # The final snapshot is the shipped network (up to fp16 rounding of the snapshot).
    final = load_file(str(tmp_path / meta["checkpoints"][-1]["file"]))
    weights = model.state_dict()
    assert all(torch.allclose(final[k].float(), weights[k], atol=1e-2, rtol=1e-2) for k in weights)
    assert (tmp_path / "tiny-training.png").stat().st_size > 1000


def test_main_parses_arguments(tmp_path) -> None:
    cfg = train.parse_args(["--steps", "7", "--input-size", "160", "--out-dir", str(tmp_path), "--no-progress"])
    assert (cfg.steps, cfg.input_size, cfg.out_dir, cfg.extra["progress"]) == (7, 160, str(tmp_path), False)
    assert cfg.widths == train.TrainConfig().widths  # the shipped shape by default


def test_network_shape_flags(tmp_path) -> None:
    cfg = train.parse_args(["--widths", "32,64,96,96,128", "--conv1", "7,2,3", "--input-size", "128"])
    net = cfg.net_config()
    assert net.widths == (32, 64, 96, 96, 128)
    assert (net.conv1_kernel, net.conv1_stride, net.conv1_padding) == (7, 2, 3)
    with pytest.raises(SystemExit):
        train.parse_args(["--conv1", "7,2"])


def test_recipe_flags_reach_the_network() -> None:
    cfg = train.parse_args(["--dropout", "0.3", "--pool-output", "1", "--batchnorm"])
    net = MiniAlexNet(cfg.net_config())
    assert cfg.batchnorm and net.config.dropout == 0.3
    assert isinstance(net.avgpool, nn.AdaptiveAvgPool2d) and net.avgpool.output_size == (1, 1)
    first = net.classifier[1]
    assert isinstance(first, nn.Linear) and first.in_features == cfg.widths[-1]  # one value per conv5 unit
    assert not train.parse_args([]).batchnorm  # the shipped recipe trains without BatchNorm
    assert not train.parse_args(["--no-batchnorm"]).batchnorm
    assert train.parse_args([]).drop_parts == 0.0  # the shipped recipe draws every part
    assert train.parse_args(["--drop-parts", "0.5"]).drop_parts == 0.5


def test_without_batchnorm_the_trained_net_is_the_shipped_net() -> None:
    torch.manual_seed(2)
    net = MiniAlexNet(NetConfig(widths=(4, 6, 6, 6, 5), conv1_kernel=5, conv1_stride=2, hidden=8))
    train.he_init(net)
    model = train.BNTrainNet(net, batchnorm=False)
    assert len(model.bns) == 0 and not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    convs = [m for m in net.features if isinstance(m, nn.Conv2d)]
    # He initialization: weight variance 2 / fan-in, so ReLU activations keep their scale.
    fan_in = convs[2].weight[0].numel()
    assert abs(convs[2].weight.var().item() * fan_in / 2 - 1) < 0.25
    last = net.classifier[-1]
    assert isinstance(last, nn.Linear) and last.weight.std().item() < 0.02 and not last.bias.any()
    model.eval()
    folded = train.fold_batchnorm(model)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model(x), folded(x)) and torch.equal(net(x), folded(x))

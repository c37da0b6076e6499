"""The recipe and its flags: `layerscope train` with no flags is the shipped recipe; each flag reaches the run."""

from __future__ import annotations

import json
from dataclasses import asdict, replace

import pytest
from torch import nn

from models.nets import MiniAlexNet
from models.training.config import TrainConfig, parse_args
from models.training.loop import train
from models.zoo.tinyweights import WEIGHTS_DIR, read_meta
from tests.models.training.conftest import TINY


def test_main_parses_arguments(tmp_path) -> None:
    cfg = parse_args(["--steps", "7", "--input-size", "160", "--out-dir", str(tmp_path), "--no-progress"])
    assert (cfg.steps, cfg.input_size, cfg.out_dir, cfg.extra["progress"]) == (7, 160, str(tmp_path), False)
    assert cfg.widths == TrainConfig().widths  # the shipped shape by default


def test_network_shape_flags(tmp_path) -> None:
    cfg = parse_args(["--widths", "32,64,96,96,128", "--conv1", "7,2,3", "--input-size", "128"])
    net = cfg.net_config()
    assert net.widths == (32, 64, 96, 96, 128)
    assert (net.conv1_kernel, net.conv1_stride, net.conv1_padding) == (7, 2, 3)
    with pytest.raises(SystemExit):
        parse_args(["--conv1", "7,2"])


def test_recipe_flags_reach_the_network() -> None:
    cfg = parse_args(["--dropout", "0.3", "--pool-output", "1", "--batchnorm"])
    net = MiniAlexNet(cfg.net_config())
    assert cfg.batchnorm and net.config.dropout == 0.3
    assert isinstance(net.avgpool, nn.AdaptiveAvgPool2d) and net.avgpool.output_size == (1, 1)
    first = net.classifier[1]
    assert isinstance(first, nn.Linear) and first.in_features == cfg.widths[-1]  # one value per conv5 unit
    assert not parse_args([]).batchnorm  # the shipped recipe trains without BatchNorm
    assert not parse_args(["--no-batchnorm"]).batchnorm
    assert parse_args([]).drop_parts == 0.0  # the shipped recipe draws every part
    shipped = parse_args([])  # and also says where the parts are, each part type in a unit given to it
    assert (shipped.parts_task, shipped.parts_weight, shipped.parts_readout, shipped.parts_dropout) == (
        "where", 1.0, "assigned", 0.0)
    assert parse_args(["--drop-parts", "0.5"]).drop_parts == 0.5


def test_parts_flags(tmp_path) -> None:
    cfg = parse_args(["--parts-task", "where", "--parts-weight", "0.5", "--parts-layer", "3",
                            "--parts-l1", "0.002", "--parts-dropout", "0.3"])
    assert (cfg.parts_task, cfg.parts_weight, cfg.parts_layer, cfg.parts_l1, cfg.parts_dropout) == (
        "where", 0.5, 3, 0.002, 0.3)
    assert parse_args(["--parts-task", "names", "--parts-weight", "1"]).parts_task == "names"
    off = parse_args(["--parts-weight", "0"])
    assert (off.parts_task, off.parts_weight) == ("", 0.0)  # class labels alone, whatever the shipped recipe
    shipped = parse_args([])
    default = TrainConfig()
    assert (shipped.parts_task, shipped.parts_weight) == (default.parts_task, default.parts_weight)
    for bad in (["--parts-layer", "6"], ["--parts-task", "what"], ["--parts-task", "where", "--parts-weight", "0"]):
        with pytest.raises(SystemExit):
            parse_args(bad)
    with pytest.raises(ValueError, match="parts_task"):
        train(replace(TINY, parts_task="what", parts_weight=1.0, out_dir=str(tmp_path)), progress=False)


def test_the_default_config_is_the_shipped_recipe() -> None:
    """`layerscope train` with no flags trains what ships (the card says so)."""
    shipped = read_meta(WEIGHTS_DIR)["train_config"]
    default = asdict(TrainConfig())
    for key in ("out_dir", "extra"):  # where a run writes, and per-run extras, are not the recipe
        shipped.pop(key, None)
        default.pop(key)
    assert shipped == json.loads(json.dumps(default))

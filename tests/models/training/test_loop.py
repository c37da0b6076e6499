"""The training loop: its schedule, and tiny runs that write the weights, snapshots, metadata and curve."""

from __future__ import annotations

import json
from dataclasses import replace

import torch
from safetensors.torch import load_file

from models.nets import MiniAlexNet
from models.training.loop import checkpoint_steps, lr_at, train
from models.zoo.tinyweights import META_KEYS, load_checkpoint, load_tiny
from tests.models.training.conftest import TINY


def test_schedule_warms_up_then_decays() -> None:
    cfg = replace(TINY, steps=100, lr=0.1, warmup_fraction=0.1)
    assert lr_at(0, cfg) < lr_at(9, cfg) == 0.1
    assert lr_at(99, cfg) < 0.01
    assert checkpoint_steps(1000) == {"init": 0, "1pct": 10, "10pct": 100, "final": 1000}


def test_tiny_run_writes_weights_metadata_and_snapshots(tmp_path) -> None:
    cfg = replace(TINY, out_dir=str(tmp_path))
    meta = train(cfg, progress=False)
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


def test_naming_parts_trains_the_readout_and_ships_the_plain_network(tmp_path) -> None:
    cfg = replace(TINY, out_dir=str(tmp_path), parts_task="names", parts_weight=1.0, parts_layer=3, parts_l1=1e-3,
                  drop_parts=0.3)
    meta = train(cfg, progress=False)
    history = json.loads((tmp_path / "tiny-history.json").read_text())
    assert len(history["parts_loss"]) == len(history["loss"]) > 0
    assert meta["train_config"]["parts_weight"] == 1.0 and meta["train_config"]["parts_layer"] == 3
    model, _ = load_tiny(tmp_path)
    # The readout is a training aid: the shipped weights are exactly a MiniAlexNet's.
    assert set(load_file(str(tmp_path / "tiny.safetensors"))) == set(MiniAlexNet(cfg.net_config()).state_dict())
    assert isinstance(model, MiniAlexNet)


def test_saying_where_parts_are_trains_and_ships_the_plain_network(tmp_path) -> None:
    cfg = replace(TINY, out_dir=str(tmp_path), parts_task="where", parts_weight=1.0, parts_layer=4, parts_l1=1e-3)
    meta = train(cfg, progress=False)
    history = json.loads((tmp_path / "tiny-history.json").read_text())
    assert len(history["parts_loss"]) == len(history["loss"]) and history["parts_loss"][0] > 0
    assert meta["train_config"]["parts_task"] == "where"
    assert set(load_file(str(tmp_path / "tiny.safetensors"))) == set(MiniAlexNet(cfg.net_config()).state_dict())

"""The shipped tiny weights: safetensors only, metadata as the registry expects, sha256 checked."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from models import world
from models.nets import MiniAlexNet, NetConfig
from models.zoo.tinyweights import META_KEYS, WEIGHTS_DIR, WeightsError, load_checkpoint, load_tiny, read_meta


def test_shipped_weights_load_and_match_their_metadata() -> None:
    model, meta = load_tiny()
    assert isinstance(model, MiniAlexNet) and not model.training
    assert tuple(meta) == META_KEYS
    assert meta["classes"] == world.CLASSES
    assert NetConfig.from_dict(meta["net"]) == model.config
    assert all(p.dtype == torch.float32 for p in model.state_dict().values())
    assert (WEIGHTS_DIR / "tiny.safetensors").stat().st_size <= 10 * 1024 * 1024
    assert meta["dtype"] in ("float16", "float32")
    assert len(meta["mean"]) == len(meta["std"]) == 3


def test_no_batchnorm_and_deep_maps_big_enough() -> None:
    model, meta = load_tiny()
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    with torch.no_grad():
        conv1 = model.features[:2](torch.zeros(1, 3, meta["input_size"], meta["input_size"]))
    assert conv1.shape[-1] >= 31 and 128 <= meta["input_size"] <= 224


def test_no_pickles_ship() -> None:
    suffixes = {p.suffix for p in WEIGHTS_DIR.iterdir()}
    assert not suffixes & {".pt", ".pth", ".pkl", ".bin", ".ckpt"}


def test_checkpoints_exist_and_load() -> None:
    meta = read_meta()
    assert [c["fraction"] for c in meta["checkpoints"]] == [0.0, 0.01, 0.1, 1.0]
    for c in meta["checkpoints"]:
        net = load_checkpoint(WEIGHTS_DIR / c["file"])
        assert net.features[0].weight.shape == load_tiny()[0].features[0].weight.shape


def test_altered_weights_are_refused(tmp_path: Path) -> None:
    for name in ("tiny.json", "tiny.safetensors"):
        shutil.copy(WEIGHTS_DIR / name, tmp_path / name)
    load_tiny(tmp_path)  # an untouched copy loads
    data = bytearray((tmp_path / "tiny.safetensors").read_bytes())
    data[-1] ^= 0x01
    (tmp_path / "tiny.safetensors").write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="sha256"):
        load_tiny(tmp_path)


def test_missing_weights_are_refused(tmp_path: Path) -> None:
    (tmp_path / "tiny.json").write_text(json.dumps(read_meta()))
    with pytest.raises(WeightsError, match="missing"):
        load_tiny(tmp_path)

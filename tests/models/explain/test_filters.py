"""First-layer filters as pictures, and checkpoints that load lazily and differ."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from models import world
from models.explain.filters import NotDrawable, filter_atlas
from models.explain.render import symmetric_unit, untile
from models.nets import MiniAlexNet, NetConfig
from models.zoo.checkpoints import UnknownCheckpoint, network_for, resolve_checkpoint
from models.zoo.registry import tiny_entry
from models.zoo.tinyweights import save_model, write_meta


def test_symmetric_normalization_keeps_zero_grey() -> None:
    weights = np.array([[[[0.0, 0.5, -1.0]]], [[[0.0, 0.0, 0.0]]]])
    np.testing.assert_allclose(symmetric_unit(weights).ravel(), [0.5, 0.75, 0.0, 0.5, 0.5, 0.5])


def test_atlas_tiles_are_the_kernels() -> None:
    conv = nn.Conv2d(3, 5, 3)
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[2, 0, 1, 1] = 0.7  # filter 2: red centre, everything else grey
        conv.weight[2, 1, 0, 0] = -0.7  # and a dark-green corner
    filters = filter_atlas(nn.Sequential(conv), "0", scale=2)
    assert filters.shape == (5, 3, 3, 3) and filters.tile == (6, 6) and filters.columns == 3
    assert filters.atlas.shape == (12, 18, 3)
    tile = untile(filters.atlas, filters.tile, filters.columns, 2)
    assert tile[2, 2].tolist() == [255, 128, 128] and tile[0, 0].tolist() == [128, 0, 128]
    assert (untile(filters.atlas, filters.tile, filters.columns, 0) == 128).all()
    np.testing.assert_allclose(filters.norms[2], 0.7 * np.sqrt(2), rtol=1e-6)
    with pytest.raises(NotDrawable):
        filter_atlas(nn.Sequential(conv, nn.Conv2d(5, 2, 1)), "1")


def write_weights(folder: Path) -> None:
    config = NetConfig(widths=(8, 8, 8, 8, 8), hidden=16)
    header = {"net": json.dumps(config.to_dict())}
    records = []
    for step, name in enumerate(("init", "final")):
        torch.manual_seed(step)
        net = MiniAlexNet(config)
        save_model(net, folder / f"ckpt-{name}.safetensors", torch.float16, metadata=header)
        records.append({"name": name, "step": step, "fraction": float(step), "file": f"ckpt-{name}.safetensors"})
    digest = save_model(net, folder / "tiny.safetensors")
    write_meta({"classes": world.CLASSES, "input_size": 64, "mean": [0.5] * 3, "std": [0.25] * 3,
                "net": config.to_dict(), "checkpoints": records, "sha256": digest}, folder)


def test_checkpoints_load_lazily_once_and_differ(tmp_path: Path) -> None:
    write_weights(tmp_path)
    entry = tiny_entry(tmp_path)
    assert resolve_checkpoint(entry, None) is None and resolve_checkpoint(entry, " ") is None
    assert resolve_checkpoint(entry, "init") == "init"
    with pytest.raises(UnknownCheckpoint, match="init, final"):
        resolve_checkpoint(entry, "10pct")
    init, final = network_for(entry, "init"), network_for(entry, "final")
    assert network_for(entry, "init") is init  # cached
    assert network_for(entry, None) is entry.network
    assert not any(p.requires_grad for p in init.parameters()) and not init.training
    a, b = filter_atlas(init, "features.0"), filter_atlas(final, "features.0")
    assert not np.array_equal(a.atlas, b.atlas) and a.norms != b.norms
    # The final snapshot is the served network (up to the float16 it was stored in).
    assert entry.network is not None
    served = entry.network.state_dict()["features.0.weight"]
    torch.testing.assert_close(final.state_dict()["features.0.weight"], served, atol=1e-3, rtol=1e-3)

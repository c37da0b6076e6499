"""Units: layer shapes, the conv behind a ReLU, and every dissection file shape we accept."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from models.nets import MiniAlexNet, NetConfig
from models.units import layer_shapes, pre_activation, read_dissection, unit_count


def test_shapes_and_pre_activation() -> None:
    net = MiniAlexNet(NetConfig(widths=(8, 12, 16, 20, 24), hidden=16)).eval()
    shapes = layer_shapes(net, 128)
    assert shapes["features.11"] == (24, 7, 7) and shapes["classifier.5"] == (16,)
    assert unit_count(net, 128, "features.4") == 12
    assert layer_shapes(net, 64)["features.11"] == (24, 3, 3)  # cached per input size
    assert pre_activation(net, "features.11") == "features.10"
    assert pre_activation(net, "classifier.5") == "classifier.4"
    assert pre_activation(net, "features.12") == "features.12"
    assert all(not m._forward_hooks for m in net.modules())
    assert torch.is_grad_enabled()


def test_dissection_file_shapes(tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    assert read_dissection(path) == {}
    unit = {"unit": 3, "concept": "wheel", "iou": 0.41, "category": "part"}
    for raw in (
        {"features.9": [unit]},
        {"layers": {"features.9": [unit]}},
        {"layers": {"features.9": {"units": [unit]}}},
        {"layers": [{"name": "features.9", "units": [unit]}]},
    ):
        path.write_text(json.dumps(raw))
        (record,) = read_dissection(path)["features.9"]
        assert (record["channel"], record["label"], record["iou"], record["category"]) == (3, "wheel", 0.41, "part")

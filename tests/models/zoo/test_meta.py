"""tiny.json as typed values: the fields, what a missing optional key means, taught units."""

from __future__ import annotations

from typing import Any

import pytest

from models.nets import NetConfig
from models.zoo.meta import Checkpoint, ModelMeta, TaughtParts
from models.zoo.registry import tiny_entry
from models.zoo.tinyweights import WEIGHTS_DIR, read_meta, taught_parts

RAW: dict[str, Any] = {
    "classes": ["car", "bus"],
    "input_size": 64,
    "mean": [0.5, 0.25, 0.125],
    "std": [0.2, 0.3, 0.4],
    "net": {"num_classes": 2, "widths": [8, 8, 8, 8, 8], "hidden": 16},
    "sha256": "ab" * 32,
    "checkpoints": [{"name": "init", "step": 0, "fraction": 0.0, "file": "tiny-ckpt-init.safetensors"}],
    "metrics": {"accuracy": 0.5, "evaluation": {"images": 10}},
    "train_config": {"world_seed": 7, "parts_weight": 1.0, "parts_task": "where", "parts_layer": 3},
    "dtype": "float16",
}


def test_fields_are_typed() -> None:
    meta = ModelMeta.from_dict(RAW)
    assert meta.classes == ("car", "bus") and meta.input_size == 64
    assert meta.mean == (0.5, 0.25, 0.125) and meta.std == (0.2, 0.3, 0.4)
    assert meta.net == NetConfig(num_classes=2, widths=(8, 8, 8, 8, 8), hidden=16)
    assert meta.checkpoints == (Checkpoint("init", 0, 0.0, "tiny-ckpt-init.safetensors"),)
    assert meta.checkpoints[0].public() == {"name": "init", "step": 0, "fraction": 0.0}
    assert meta.taught_parts == TaughtParts("where", 3)
    assert meta.world_seed == 7 and meta.dtype == "float16" and meta.accuracy == 0.5
    assert meta.metrics["evaluation"] == {"images": 10}
    with pytest.raises(TypeError):
        meta.metrics["accuracy"] = 1.0  # type: ignore[index]


def test_missing_optional_keys() -> None:
    required = {k: RAW[k] for k in ("classes", "input_size", "mean", "std", "net", "sha256")}
    meta = ModelMeta.from_dict(required)
    assert meta.trained_on == "the LayerScope parts world"
    assert meta.checkpoints == () and meta.taught_parts is None and meta.accuracy is None
    assert dict(meta.metrics) == {} and meta.world_seed is None
    with pytest.raises(KeyError):
        ModelMeta.from_dict({k: v for k, v in required.items() if k != "sha256"})


def test_taught_units_belong_to_their_conv_only() -> None:
    taught = TaughtParts("where", 4, (("wheel", 0), ("window", 1)))
    assert taught.to_dict() == {"task": "where", "layer": 4, "units": {"wheel": 0, "window": 1}}
    assert taught.units_on("conv4") == {0: "wheel", 1: "window"}
    assert taught.units_on("conv4 (before ReLU)") == {0: "wheel", 1: "window"}
    assert taught.units_on("conv5") == {} and taught.units_on("fc6") == {}
    assert TaughtParts("names", 4).units_on("conv4") == {}
    assert TaughtParts("names", 4).to_dict() == {"task": "names", "layer": 4}


def test_the_dict_reader_and_the_typed_one_agree_on_the_shipped_model() -> None:
    raw = read_meta(WEIGHTS_DIR)
    entry = tiny_entry()
    assert entry.summary()["taught_parts"] == taught_parts(raw["train_config"])
    assert [c.name for c in entry.checkpoints] == [c["name"] for c in raw["checkpoints"]]
    assert entry.summary()["checkpoints"] == [{k: v for k, v in c.items() if k != "file"} for c in raw["checkpoints"]]
    assert entry.metrics == raw["metrics"] and entry.classes == raw["classes"]
    assert entry.familiarity and entry.assets_source == entry.weights_source
    assert entry.dissection_file == WEIGHTS_DIR / "tiny-dissection.json"

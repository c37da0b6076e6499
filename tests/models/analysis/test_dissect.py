"""Dissection finds known detectors in hand-made models, over all pictures and within each class."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from models import world
from models.analysis import dissect
from models.analysis.concepts import CONV_LAYERS, Alignment, Concepts, iou_table, layer_activations, matched_quantiles
from models.analysis.summary import summary_for_metadata
from models.geometry import sequential_geometry
from models.nets import MiniAlexNet, NetConfig
from models.preprocess import MEAN, STD
from models.world import seeds
from models.zoo.tinyweights import read_meta, save_model, write_meta
from tests.models.analysis.conftest import hand_made, square_pictures


def test_finds_the_known_detectors() -> None:
    x, concepts = square_pictures()
    acts = layer_activations(hand_made(), x, {"c": "1"})
    units = dissect.dissect_activations(acts, concepts)["c"]
    assert units[0]["concept"] == "red" and units[0]["iou"] > 0.8
    assert units[1]["concept"] == "blue" and units[1]["iou"] > 0.8
    assert units[2]["iou"] < 0.3  # the grey unit is no detector of either square


def test_coarse_maps_are_upsampled_to_the_masks() -> None:
    # The same detector behind a stride-2 pooling still finds its concept.
    x, concepts = square_pictures(seed=2)
    model = nn.Sequential(hand_made(), nn.AvgPool2d(2))
    acts = layer_activations(model, x, {"c": "1"})
    assert acts["c"].shape[-1] == 16
    units = dissect.dissect_activations(acts, concepts)["c"]
    assert units[0]["concept"] == "red" and units[0]["iou"] > 0.5


def test_aligned_upsampling_finds_a_strided_detector_better_than_stretching() -> None:
    # Behind a 5x5 stride-4 pooling without padding the 7x7 map covers pixels 2..26 of 32:
    # stretching it over the whole picture misplaces the outer units by up to 3 px.
    x, concepts = square_pictures(seed=3)
    model = nn.Sequential(hand_made(), nn.AvgPool2d(5, stride=4))
    acts = layer_activations(model, x, {"c": "1"})
    assert acts["c"].shape[-1] == 7
    geometry = sequential_geometry(model, "m")["m.1"]
    assert (geometry.offset, geometry.stride) == (2.0, 4)
    align = {"c": Alignment(geometry.offset, geometry.stride, 32)}
    stretched = dissect.dissect_activations(acts, concepts, [0.95, 0.95])["c"][0]
    aligned = dissect.dissect_activations(acts, concepts, [0.95, 0.95], align)["c"][0]
    assert aligned["concept"] == stretched["concept"] == "red"
    assert aligned["iou"] > stretched["iou"] + 0.03, (aligned["iou"], stretched["iou"])


def test_within_class_finds_a_part_that_looks_different_in_each_class() -> None:
    # One part type, "mark": a red square in class A pictures, a blue one in class B.
    x, squares = square_pictures(n=40, seed=3)
    labels = ["A" if i % 2 == 0 else "B" for i in range(len(x))]
    mark = torch.stack([squares.masks[i, 0 if c == "A" else 1] for i, c in enumerate(labels)])[:, None]
    concepts = Concepts(["mark"], ["part"], mark)
    acts = layer_activations(hand_made(), x, {"c": "1"})
    # Over all pictures neither colour unit covers every mark: about half of them each.
    iou, _ = iou_table(acts["c"], concepts, matched_quantiles(concepts.fractions()))
    assert 0.3 < iou.max() < 0.65
    within = dissect.within_class_iou(acts, concepts, labels, {"A": ["mark"], "B": ["mark"]})
    assert within["mark"]["A"]["iou"] > 0.8 and within["mark"]["B"]["iou"] > 0.8
    # ... and a different unit in each class: the red one in A, the blue one in B.
    assert (within["mark"]["A"]["layer"], within["mark"]["A"]["unit"]) == ("c", 0)
    assert (within["mark"]["B"]["layer"], within["mark"]["B"]["unit"]) == ("c", 1)
    # A class with no pictures is left out rather than scored on nothing.
    assert "C" not in dissect.within_class_iou(acts, concepts, labels, {"C": ["mark"]}).get("mark", {})


def test_run_dissects_both_networks_and_writes_the_page_file_plots_and_summary(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = MiniAlexNet(NetConfig(widths=(4, 6, 6, 6, 5), conv1_kernel=5, conv1_stride=2, hidden=8)).eval()
    meta = {"input_size": 64, "mean": MEAN, "std": STD}
    report = dissect.run(net, meta, seed=5, images=22)
    assert (report["seed"], report["images"], report["mask_size"], report["probe_seed"]) == (5, 22, 32, seeds.PROBES)
    assert report["concepts"] == [*world.PARTS, *world.CLASSES]
    for label in ("trained", "untrained"):
        units = report[label]["units"]
        assert [len(units[t]) for t in CONV_LAYERS] == list(net.config.widths)
        assert all(r["category"] in ("edge/colour", "part", "object", "none") for rows in units.values() for r in rows)
        assert set(report[label]["layers"]["conv3"]["probe_iou"]) == set(report["concepts"])
    assert set(report["ceiling_iou"]) == set(CONV_LAYERS) and "every_part_detected" in report["targets"]
    # The files --write-metadata keeps: the page's per-unit file, the plots, tiny.json's summary.
    save_model(net, tmp_path / "ckpt.safetensors", metadata={"net": json.dumps(net.config.to_dict())})
    write_meta({"checkpoints": [{"name": "final", "step": 1, "file": "ckpt.safetensors"}], "metrics": {}}, tmp_path)
    dissect.write(report, tmp_path)
    per_unit = json.loads((tmp_path / "tiny-dissection.json").read_text())
    assert list(per_unit) == list(CONV_LAYERS.values()) and per_unit["features.11"][0]["unit"] == 0
    assert read_meta(tmp_path)["metrics"]["dissection"] == json.loads(json.dumps(summary_for_metadata(report)))
    assert (tmp_path / "tiny-dissection.png").stat().st_size > 1000 and (tmp_path / "tiny-conv1.png").exists()

"""Dissection finds known detectors in hand-made models, and grating probes read filters right."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from models import world
from models.analysis import dissect

MEAN, STD = [0.5, 0.5, 0.5], [0.25, 0.25, 0.25]


def _squares(n: int = 24, size: int = 32, seed: int = 0) -> tuple[torch.Tensor, dissect.Concepts]:
    """Grey noise images with a red square (concept "red") and a blue square ("blue")."""
    rng = np.random.default_rng(seed)
    images = rng.uniform(0.3, 0.6, size=(n, 3, size, size)).astype(np.float32)
    masks = np.zeros((n, 2, size, size), dtype=bool)
    for i in range(n):
        for k, colour in enumerate(([1.0, 0.0, 0.0], [0.0, 0.0, 1.0])):
            s = int(rng.integers(4, 9))
            y, x = rng.integers(0, size - s, 2)
            images[i, :, y:y + s, x:x + s] = np.array(colour, dtype=np.float32)[:, None, None]
            masks[i, k, y:y + s, x:x + s] = True
        masks[i, 0] &= ~masks[i, 1]  # blue drawn last hides red where they overlap
    return torch.from_numpy(images), dissect.Concepts(["red", "blue"], ["part", "part"], torch.from_numpy(masks))


def _hand_made() -> nn.Module:
    """1x1 conv + ReLU: unit 0 fires on red (R - G - B), unit 1 on blue, unit 2 on grey."""
    conv = nn.Conv2d(3, 3, 1)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([[1.0, -1.0, -1.0], [-1.0, -1.0, 1.0], [0.3, 0.3, 0.3]]).view(3, 3, 1, 1))
        assert conv.bias is not None
        conv.bias.copy_(torch.tensor([0.0, 0.0, -0.2]))
    return nn.Sequential(conv, nn.ReLU())


def test_finds_the_known_detectors() -> None:
    x, concepts = _squares()
    acts = dissect.layer_activations(_hand_made(), x, {"c": "1"})
    units = dissect.dissect_activations(acts, concepts)["c"]
    assert units[0]["concept"] == "red" and units[0]["iou"] > 0.8
    assert units[1]["concept"] == "blue" and units[1]["iou"] > 0.8
    assert units[2]["iou"] < 0.3  # the grey unit is no detector of either square


def test_iou_is_low_for_a_unit_blind_to_the_concept() -> None:
    x, concepts = _squares(seed=1)
    random = torch.rand(len(x), 1, 32, 32, generator=torch.Generator().manual_seed(0))
    iou, _ = dissect.iou_table(random, concepts, [0.95, 0.95])
    assert iou.max() < 0.15


def test_coarse_maps_are_upsampled_to_the_masks() -> None:
    # The same detector behind a stride-2 pooling still finds its concept.
    x, concepts = _squares(seed=2)
    model = nn.Sequential(_hand_made(), nn.AvgPool2d(2))
    acts = dissect.layer_activations(model, x, {"c": "1"})
    assert acts["c"].shape[-1] == 16
    units = dissect.dissect_activations(acts, concepts)["c"]
    assert units[0]["concept"] == "red" and units[0]["iou"] > 0.5


def test_aligned_upsampling_puts_each_map_pixel_at_its_receptive_field_centre() -> None:
    # A 7-pixel map whose pixel i is centred at input x = 2 + 4 i, on a 32 px input.
    align = dissect.Alignment(offset=2.0, stride=4.0, input_size=32)
    for i in range(7):
        one = torch.zeros(1, 1, 7, 7)
        one[0, 0, i, i] = 1.0
        up = dissect.upsample(one, 32, align)[0, 0]
        assert up.shape == (32, 32)
        c = 2 + 4 * i
        assert float(up[c, c]) == pytest.approx(1.0)
        if i < 6:  # halfway to the next centre, half the value; at the next centre, none
            assert float(up[c, c + 2]) == pytest.approx(0.5) and float(up[c, c + 4]) == pytest.approx(0.0, abs=1e-6)
    # Past the outermost centres the edge value is held (no fading to zero).
    edge = torch.zeros(1, 1, 7, 7)
    edge[0, 0, 6, 6] = 1.0
    assert float(dissect.upsample(edge, 32, align)[0, 0, 31, 31]) == pytest.approx(1.0)


def test_aligned_upsampling_finds_a_strided_detector_better_than_stretching() -> None:
    # Behind a 5x5 stride-4 pooling without padding the 7x7 map covers pixels 2..26 of 32:
    # stretching it over the whole picture misplaces the outer units by up to 3 px.
    x, concepts = _squares(seed=3)
    model = nn.Sequential(_hand_made(), nn.AvgPool2d(5, stride=4))
    acts = dissect.layer_activations(model, x, {"c": "1"})
    assert acts["c"].shape[-1] == 7
    geometry = dissect.sequential_geometry(model, "m")["m.1"]
    assert (geometry.offset, geometry.stride) == (2.0, 4)
    align = {"c": dissect.Alignment(geometry.offset, geometry.stride, 32)}
    stretched = dissect.dissect_activations(acts, concepts, [0.95, 0.95])["c"][0]
    aligned = dissect.dissect_activations(acts, concepts, [0.95, 0.95], align)["c"][0]
    assert aligned["concept"] == stretched["concept"] == "red"
    assert aligned["iou"] > stretched["iou"] + 0.03, (aligned["iou"], stretched["iou"])


def test_within_class_finds_a_part_that_looks_different_in_each_class() -> None:
    # One part type, "mark": a red square in class A pictures, a blue one in class B.
    x, squares = _squares(n=40, seed=3)
    labels = ["A" if i % 2 == 0 else "B" for i in range(len(x))]
    mark = torch.stack([squares.masks[i, 0 if c == "A" else 1] for i, c in enumerate(labels)])[:, None]
    concepts = dissect.Concepts(["mark"], ["part"], mark)
    acts = dissect.layer_activations(_hand_made(), x, {"c": "1"})
    # Over all pictures neither colour unit covers every mark: about half of them each.
    iou, _ = dissect.iou_table(acts["c"], concepts, dissect.matched_quantiles(concepts.fractions()))
    assert 0.3 < iou.max() < 0.65
    within = dissect.within_class_iou(acts, concepts, labels, {"A": ["mark"], "B": ["mark"]})
    assert within["mark"]["A"]["iou"] > 0.8 and within["mark"]["B"]["iou"] > 0.8
    # ... and a different unit in each class: the red one in A, the blue one in B.
    assert (within["mark"]["A"]["layer"], within["mark"]["A"]["unit"]) == ("c", 0)
    assert (within["mark"]["B"]["layer"], within["mark"]["B"]["unit"]) == ("c", 1)
    # A class with no pictures is left out rather than scored on nothing.
    assert "C" not in dissect.within_class_iou(acts, concepts, labels, {"C": ["mark"]}).get("mark", {})


def test_quantile_matches_concept_coverage() -> None:
    qs = dissect.matched_quantiles(torch.tensor([0.0008, 0.005, 0.06, 0.5]))
    assert qs == [0.999, 0.995, 0.95, 0.9]


def _probe(weight: torch.Tensor) -> dict[str, np.ndarray]:
    conv = nn.Conv2d(3, weight.shape[0], weight.shape[-1], padding=weight.shape[-1] // 2)
    with torch.no_grad():
        conv.weight.copy_(weight)
        assert conv.bias is not None
        conv.bias.zero_()
    return dissect.selectivity(nn.Sequential(conv, nn.ReLU()), {"c": "1"}, 48, MEAN, STD)["c"]


def test_gratings_find_orientation_and_colour() -> None:
    k = 7
    xs = torch.arange(k, dtype=torch.float32) - k // 2
    edge = torch.sin(2 * math.pi * xs / 6.0).view(1, k).expand(k, k)  # varies along x only
    vertical = edge.expand(3, k, k)  # luminance, vertical stripes
    horizontal = edge.t().expand(3, k, k)
    red_green = torch.zeros(3, k, k)
    red_green[0, k // 2, k // 2], red_green[1, k // 2, k // 2] = 1.0, -1.0  # colour-opponent point
    grey_blob = torch.zeros(3, k, k)
    grey_blob[:, k // 2, k // 2] = 1.0  # luminance, no orientation
    r = _probe(torch.stack([vertical, horizontal, red_green, grey_blob]))
    assert r["osi"][0] > 0.8 and r["preferred_deg"][0] == 0.0
    assert r["osi"][1] > 0.8 and r["preferred_deg"][1] == 90.0
    assert r["colour"][2] > 0.5 and r["osi"][2] < 0.5
    assert r["colour"][3] < 0.0 and r["osi"][3] < 0.5
    assert r["colour"][0] < 0.0


def test_world_concepts_put_objects_in_their_class_channel() -> None:
    samples = [world.generate(0, i, 64) for i in range(11)]
    c = dissect.world_concepts(samples, 32)
    assert c.masks.shape == (11, len(world.PARTS) + len(world.CLASSES), 32, 32)
    for i, s in enumerate(samples):
        objects = c.masks[i, len(world.PARTS):].flatten(1).any(1)
        assert objects.nonzero().flatten().tolist() == [s.label]


def test_targets_name_each_part_types_best_unit_and_decide_every_target() -> None:
    def layer(best: float, unit: int, share: float) -> dict[str, Any]:
        names = [*world.PARTS, *world.CLASSES]
        return {"best_iou": dict.fromkeys(names, best), "best_unit": dict.fromkeys(names, unit),
                "edge_or_colour": 0.75, "part_detectors": share, "object_detectors": 0.0}

    layers = {"conv1": layer(0.02, 0, 0.0), "conv2": layer(0.05, 1, 0.0), "conv3": layer(0.10, 2, 0.1),
              "conv4": layer(0.30, 3, 0.3), "conv5": layer(0.25, 4, 0.4)}
    layers["conv5"]["best_iou"]["mouth"] = 0.35  # the mouth's best unit is in conv5
    layers["conv5"]["best_iou"]["cat"] = 0.19  # one object class just under the bar
    t = dissect.check_targets({"trained": {"layers": layers}})
    assert t["part_best_iou_conv2_5"]["wheel"] == 0.30 and t["part_best_iou_conv2_5"]["mouth"] == 0.35
    assert t["part_best_unit_conv2_5"]["wheel"] == "conv4 #3" and t["part_best_unit_conv2_5"]["mouth"] == "conv5 #4"
    assert t["every_part_detected"] and not t["every_object_detected"]
    assert t["conv1_half_selective"] and t["detector_share_rises"]
    assert "scrambled" not in t["object_best_iou_conv5"] and t["scrambled_best_iou_conv5"] == 0.25

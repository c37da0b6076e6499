"""The dissection's targets, decided from hand-made layer numbers."""

from __future__ import annotations

from typing import Any

from models import world
from models.analysis.summary import check_targets


def test_targets_name_each_part_types_best_unit_and_decide_every_target() -> None:
    def layer(best: float, unit: int, share: float) -> dict[str, Any]:
        names = [*world.PARTS, *world.CLASSES]
        return {"best_iou": dict.fromkeys(names, best), "best_unit": dict.fromkeys(names, unit),
                "edge_or_colour": 0.75, "part_detectors": share, "object_detectors": 0.0}

    layers = {"conv1": layer(0.02, 0, 0.0), "conv2": layer(0.05, 1, 0.0), "conv3": layer(0.10, 2, 0.1),
              "conv4": layer(0.30, 3, 0.3), "conv5": layer(0.25, 4, 0.4)}
    layers["conv5"]["best_iou"]["mouth"] = 0.35  # the mouth's best unit is in conv5
    layers["conv5"]["best_iou"]["cat"] = 0.19  # one object class just under the bar
    t = check_targets({"trained": {"layers": layers}})
    assert t["part_best_iou_conv2_5"]["wheel"] == 0.30 and t["part_best_iou_conv2_5"]["mouth"] == 0.35
    assert t["part_best_unit_conv2_5"]["wheel"] == "conv4 #3" and t["part_best_unit_conv2_5"]["mouth"] == "conv5 #4"
    assert t["every_part_detected"] and not t["every_object_detected"]
    assert t["conv1_half_selective"] and t["detector_share_rises"]
    assert "scrambled" not in t["object_best_iou_conv5"] and t["scrambled_best_iou_conv5"] == 0.25

"""What a dissection report says: each unit's category, per-layer shares, the targets, and the files kept.

Works on the report :func:`models.analysis.dissect.run` builds (plain dicts), so the
numbers in tiny.json, the page's per-unit file and the printed table all come from here.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import numpy as np

from models import world
from models.analysis.concepts import CONV_LAYERS, DETECTOR_IOU, TARGET_IOU
from models.analysis.selectivity import COLOUR_MIN, OSI_MIN

DEEP_LAYERS = ("conv2", "conv3", "conv4", "conv5")  # where a part type's detector is looked for


def classify_unit(u: dict[str, Any]) -> str:
    """A unit's one category: a part or object detector first, else edge/colour, else none."""
    if u["iou"] >= DETECTOR_IOU and u["kind"] in ("part", "object"):
        return str(u["kind"])
    if u.get("osi", 0.0) >= OSI_MIN or u.get("colour", 0.0) >= COLOUR_MIN:
        return "edge/colour"
    return "none"


def summarize(units: dict[str, list[dict[str, Any]]], names: list[str], kinds: list[str]) -> dict[str, Any]:
    """Per-layer shares of detector kinds and, per concept, the best unit IoU in each layer."""
    layers: dict[str, Any] = {}
    for title, rows in units.items():
        n = len(rows)
        cats = [classify_unit(r) for r in rows]
        per = np.array([r["per_concept"] for r in rows])  # C x K
        layers[title] = {
            "units": n,
            "oriented": round(sum(r["osi"] >= OSI_MIN for r in rows) / n, 4),
            "colour": round(sum(r["colour"] >= COLOUR_MIN for r in rows) / n, 4),
            "edge_or_colour": round(sum((r["osi"] >= OSI_MIN) or (r["colour"] >= COLOUR_MIN) for r in rows) / n, 4),
            "part_detectors": round(cats.count("part") / n, 4),
            "object_detectors": round(cats.count("object") / n, 4),
            "mean_best_iou": round(float(np.mean([r["iou"] for r in rows])), 4),
            # Each unit once (a detector first, else edge/colour): the shares add up to 1.
            "category_share": {c: round(cats.count(c) / n, 4) for c in ("edge/colour", "part", "object", "none")},
            "best_iou": {c: round(float(per[:, k].max()), 4) for k, c in enumerate(names)},
            "best_unit": {c: int(per[:, k].argmax()) for k, c in enumerate(names)},
        }
    return layers


def _beyond_units(report: dict[str, Any], objects: list[str]) -> dict[str, Any]:
    """Not targets: what the best combination of units (models/analysis/probe.py) reaches, and
    what the layers' resolution allows, so a miss can be read as "spread over units" or
    "out of reach"."""
    layers = report["trained"]["layers"]
    more: dict[str, Any] = {}
    if "probe_iou" in layers["conv5"]:
        more["part_best_probe_iou_conv2_5"] = {p: max(layers[t]["probe_iou"][p] for t in DEEP_LAYERS)
                                               for p in world.PARTS}
        more["object_best_probe_iou_conv5"] = {c: layers["conv5"]["probe_iou"][c] for c in objects}
    if "ceiling_iou" in report:
        more["part_ceiling_iou_conv5"] = {p: report["ceiling_iou"]["conv5"][p] for p in world.PARTS}
        more["object_ceiling_iou_conv5"] = {c: report["ceiling_iou"]["conv5"][c] for c in objects}
    return more


def check_targets(report: dict[str, Any]) -> dict[str, Any]:
    """The dissection's targets, each with the numbers that decide it."""
    layers = report["trained"]["layers"]
    deep = list(DEEP_LAYERS)
    part_best = {p: max(layers[t]["best_iou"][p] for t in deep) for p in world.PARTS}
    # Which unit that is (its layer and number): with a recipe that gave each part type a unit, whether
    # the best detector is the taught unit or another one says what the teaching did.
    where = {p: deep[int(np.argmax([layers[t]["best_iou"][p] for t in deep]))] for p in world.PARTS}
    part_unit = {p: f"{where[p]} #{layers[where[p]]['best_unit'][p]}" for p in world.PARTS
                 if "best_unit" in layers[where[p]]}
    # "scrambled" is not an object: any class's parts in a wrong arrangement, so no unit's
    # region can match every scrambled object. It is reported, not counted.
    obj_best = {c: layers["conv5"]["best_iou"][c] for c in world.CLASSES if c != "scrambled"}
    shares = [layers[t]["part_detectors"] + layers[t]["object_detectors"] for t in CONV_LAYERS]
    return {
        "conv1_selective_share": layers["conv1"]["edge_or_colour"],
        "conv1_half_selective": layers["conv1"]["edge_or_colour"] >= 0.5,
        "part_best_iou_conv2_5": part_best,
        "every_part_detected": all(v >= TARGET_IOU for v in part_best.values()),
        "part_best_unit_conv2_5": part_unit,
        "object_best_iou_conv5": obj_best,
        "every_object_detected": all(v >= TARGET_IOU for v in obj_best.values()),
        "scrambled_best_iou_conv5": layers["conv5"]["best_iou"]["scrambled"],
        "detector_share_by_layer": dict(zip(CONV_LAYERS, [round(s, 4) for s in shares], strict=True)),
        # Rises: conv5 above conv1 and no layer more than 0.05 below the one before it.
        "detector_share_rises": bool(shares[-1] > shares[0] and all(b >= a - 0.05 for a, b in pairwise(shares))),
        **_beyond_units(report, list(obj_best)),
    }


def per_unit_file(report: dict[str, Any]) -> dict[str, Any]:
    """The page's file: layer name -> [{unit, concept, iou, ...}] for the trained model."""
    keep = ("unit", "concept", "iou", "kind", "quantile", "category", "osi", "preferred_deg", "colour")
    return {CONV_LAYERS[t]: [{k: r[k] for k in keep} for r in rows]
            for t, rows in report["trained"]["units"].items()}


def summary_for_metadata(report: dict[str, Any]) -> dict[str, Any]:
    """The compact dissection summary kept in tiny.json's metrics."""
    def slim(layers: dict[str, Any]) -> dict[str, Any]:
        return {t: {k: v for k, v in d.items() if k not in ("best_unit",)} for t, d in layers.items()}
    return {
        "seed": report["seed"], "images": report["images"], "mask_size": report["mask_size"],
        "quantile": report["quantile"], "detector_iou": report["detector_iou"],
        "trained": slim(report["trained"]["layers"]), "untrained": slim(report["untrained"]["layers"]),
        "probe_seed": report.get("probe_seed"), "ceiling_iou": report.get("ceiling_iou"),
        "within_class": {k: report[k].get("within_class") for k in ("trained", "untrained")},
        "targets": report["targets"],
    }


def format_table(report: dict[str, Any]) -> str:
    """The printed summary: per layer, trained beside untrained, then the targets."""
    lines = ["layer  units  edge/colour  part det.  object det.  mean best IoU   (trained | untrained)"]
    for t in CONV_LAYERS:
        a, b = report["trained"]["layers"][t], report["untrained"]["layers"][t]
        lines.append(f"{t:6s} {a['units']:5d}  {a['edge_or_colour']:.2f} | {b['edge_or_colour']:.2f}  "
                     f"{a['part_detectors']:.2f} | {b['part_detectors']:.2f}  "
                     f"{a['object_detectors']:.2f} | {b['object_detectors']:.2f}  "
                     f"{a['mean_best_iou']:.3f} | {b['mean_best_iou']:.3f}")
    tg = report["targets"]
    lines.append(f"targets: conv1 selective {tg['conv1_selective_share']:.2f}, every part >= {TARGET_IOU}: "
                 f"{tg['every_part_detected']}, every object >= {TARGET_IOU}: {tg['every_object_detected']}, "
                 f"detector share rises: {tg['detector_share_rises']}")
    return "\n".join(lines)

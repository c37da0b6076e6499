"""What the card quotes from the dissection and reliance jobs: tables, counts and the readings of them."""

from __future__ import annotations

from typing import Any

import numpy as np

from models import world
from models.analysis.concepts import CONV_LAYERS, TARGET_IOU
from models.card.runs import CLASS_LABELS_ALONE, CLASS_LABELS_ALONE_RHO
from models.card.text import and_list, pct, reached, snippet, table
from models.zoo.tinyweights import taught_parts

TITLES = tuple(CONV_LAYERS)

Within = dict[str, dict[str, dict[str, Any]]]  # part -> class -> {iou, layer, unit}


def pair(a: float, b: float) -> str:
    """A **trained \\| untrained twin** cell."""
    return f"{a:.2f} \\| {b:.2f}"


def listing(best: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.2f}" for k, v in best.items())


def dissection_tables(d: dict[str, Any]) -> dict[str, str]:
    """The per-layer summary and the per-concept best IoU, trained against the untrained twin."""
    tr, un = d["trained"], d["untrained"]
    keys = ("oriented", "colour", "edge_or_colour", "part_detectors", "object_detectors", "mean_best_iou")
    rows = [[t, str(tr[t]["units"])] + [pair(tr[t][k], un[t][k]) for k in keys] for t in TITLES]
    concept_rows = [[c, str(d["quantile"][c])] + [pair(tr[t]["best_iou"][c], un[t]["best_iou"][c]) for t in TITLES]
                    for c in list(world.PARTS) + list(world.CLASSES)]
    return {
        "layers": table(["layer", "units", "oriented", "colour", "edge or colour", "part detectors",
                         "object detectors", "mean best IoU"], rows),
        "concepts": table(["concept", "quantile", *TITLES], concept_rows),
    }


def representation_context(d: dict[str, Any]) -> dict[str, Any] | None:
    """Units against the best combination of units and the ideal unit (models/analysis/probe.py)."""
    t = d["targets"]
    if "part_best_probe_iou_conv2_5" not in t:
        return None
    tr, un = d["trained"], d["untrained"]

    def best(layers: dict[str, Any], key: str, concept: str, titles: tuple[str, ...]) -> float:
        return max(layers[x][key][concept] for x in titles)

    rows = []
    for kind, names, titles in (("part", world.PARTS, TITLES[1:]),
                                ("object", list(t["object_best_iou_conv5"]), ("conv5",))):
        rows += [[c, kind, "conv2-5" if kind == "part" else "conv5",
                  pair(best(tr, "best_iou", c, titles), best(un, "best_iou", c, titles)),
                  pair(best(tr, "probe_iou", c, titles), best(un, "probe_iou", c, titles)),
                  f"{d['ceiling_iou']['conv5'][c]:.2f}"] for c in names]
    probe_parts, probe_objects = t["part_best_probe_iou_conv2_5"], t["object_best_probe_iou_conv5"]
    return {
        "table": table(["concept", "kind", "layers", "best single unit", "best combination of units",
                        "ideal unit (conv5)"], rows),
        "probe_parts": reached(probe_parts), "probe_objects": reached(probe_objects),
        "unit_parts": sum(v >= TARGET_IOU for v in t["part_best_iou_conv2_5"].values()),
        "unit_objects": sum(v >= TARGET_IOU for v in t["object_best_iou_conv5"].values()),
        "lowest_ideal": f"{min(d['ceiling_iou']['conv5'].values()):.2f}",
        "low": ", ".join(p for p, v in probe_parts.items() if v < TARGET_IOU),
    }


def within_class_reach(trained: Within, twin: Within) -> dict[str, list[str]]:
    """part -> the classes in whose pictures a trained unit reaches the bar and beats the untrained twin."""
    return {p: [c for c, x in per.items() if x["iou"] >= TARGET_IOU and x["iou"] > twin[p][c]["iou"]]
            for p, per in trained.items()}


def which_units(per_class: dict[str, dict[str, Any]]) -> str:
    """Which unit wins in which class, in words: one unit for all, or the units and their classes."""
    classes_of: dict[tuple[str, int], list[str]] = {}
    for c, x in per_class.items():
        classes_of.setdefault((x["layer"], x["unit"]), []).append(c)
    if len(classes_of) == 1:
        (layer, unit), = classes_of
        return f"the same unit in every class ({layer} #{unit}), whose region over all pictures takes in more"
    return "no one unit for all (" + ", ".join(f"{layer} #{unit} in {and_list(cs)}"
                                               for (layer, unit), cs in classes_of.items()) + ")"


def within_class_context(d: dict[str, Any]) -> dict[str, Any] | None:
    """Each part type dissected within each class that draws it (models/analysis/dissect.py)."""
    within = d.get("within_class") or {}
    tr, un = within.get("trained"), within.get("untrained")
    if not tr or not un:
        return None
    overall = d["targets"]["part_best_iou_conv2_5"]
    reach = within_class_reach(tr, un)
    every = [p for p, cs in reach.items() if cs and len(cs) == len(tr[p]) and overall[p] < TARGET_IOU]
    none = [p for p, cs in reach.items() if not cs]
    rows = [[p, f"{overall[p]:.2f}", ", ".join(f"{c} {x['iou']:.2f} \\| {un[p][c]['iou']:.2f}" for c, x in per.items())]
            for p, per in tr.items()]
    return {
        "pictures": d["images"] // len(world.CLASSES),
        "table": table(["part", "over all pictures", "within each class that draws it"], rows),
        "within": sum(bool(cs) for cs in reach.values()), "parts": len(tr),
        "overall": sum(v >= TARGET_IOU for v in overall.values()),
        "every": and_list(every).capitalize() if every else "", "every_many": len(every) > 1,
        "every_units": "; ".join(f"{p}, {which_units(tr[p])}" for p in every),
        "none": and_list(none).capitalize() if none else "", "none_many": len(none) > 1,
        "none_best": ", ".join(f"{p} {max(x['iou'] for x in tr[p].values()):.2f}" for p in none),
    }


def rank_correlation(a: list[float], b: list[float]) -> float:
    """Spearman's rho (ranks by order; no ties expected in measured fractions)."""
    ra, rb = (np.argsort(np.argsort(np.asarray(x))).astype(float) for x in (a, b))
    return float(np.corrcoef(ra, rb)[0, 1])


def reliance_taught(meta: dict[str, Any], r: dict[str, Any], rho: float) -> str:
    """The reading of the reliance table for a model whose training also said where the parts are."""
    best = meta["metrics"]["dissection"]["targets"]["part_best_iou_conv2_5"]
    found = [p for p in r["parts"] if best[p] >= TARGET_IOU]
    least = min(found, key=lambda p: r["parts"][p]["class_changed"]) if found else None
    # The reading runs on into the next sentence of its paragraph, hence the closing space.
    return snippet("reliance_taught", alone=f"{CLASS_LABELS_ALONE_RHO:.2f}", rho=f"{rho:.2f}", least=least,
                   changed=pct(r["parts"][least]["class_changed"]) if least else "",
                   iou=f"{best[least]:.2f}" if least else "") + " "


def reliance_context(meta: dict[str, Any]) -> dict[str, Any] | None:
    """Which parts the classifier needs (models/analysis/reliance.py), beside whether a unit detects them."""
    r = meta["metrics"].get("reliance")
    if not r:
        return None
    best = meta["metrics"]["dissection"]["targets"]["part_best_iou_conv2_5"]
    parts = sorted(r["parts"], key=lambda p: -r["parts"][p]["class_changed"])
    rows = [[p, str(r["parts"][p]["images"]), pct(r["parts"][p]["class_changed"]),
             f"{r['parts'][p]['probability_drop']:.3f}", f"{best[p]:.2f}", "yes" if best[p] >= TARGET_IOU else "no"]
            for p in parts]
    rho = rank_correlation([r["parts"][p]["class_changed"] for p in parts], [best[p] for p in parts])
    taught = (taught_parts(meta["train_config"]) or {}).get("task") == "where"
    return {
        "r": r, "rho": f"{rho:.2f}", "reading": reliance_taught(meta, r, rho) if taught else "",
        "table": table(["part", "pictures", "class changes without it", "true-class probability drop",
                        "best single unit IoU", "unit >= 0.20"], rows),
        "changed": {p: pct(x["class_changed"], 0) for p, x in r["parts"].items()},
    }


def targets_context(t: dict[str, Any]) -> dict[str, Any]:
    return {
        "t": t, "conv1": pct(t["conv1_selective_share"], 0),
        "parts": reached(t["part_best_iou_conv2_5"]), "parts_best": listing(t["part_best_iou_conv2_5"]),
        "objects": reached(t["object_best_iou_conv5"]), "objects_best": listing(t["object_best_iou_conv5"]),
        "scrambled": f"{t.get('scrambled_best_iou_conv5', 0.0):.2f}",
        "shares": listing(t["detector_share_by_layer"]),
    }


def parts_dropout_context(meta: dict[str, Any]) -> dict[str, Any]:
    """What dropout on the readout gave the shipped model, when that is its recipe."""
    cfg = meta["train_config"]
    taught = taught_parts(cfg) or {}
    t = meta["metrics"]["dissection"]["targets"]
    parts, objects = t["part_best_iou_conv2_5"], t["object_best_iou_conv5"]
    shipped = "before" if taught.get("units") else (
        "now" if taught.get("task") == "where" and cfg.get("parts_dropout") else "never")
    return {"shipped": shipped, "parts": reached(parts), "objects": reached(objects),
            "missing": ", ".join(f"{p} {v:.2f}" for p, v in parts.items() if v < TARGET_IOU),
            "accuracy": pct(meta["metrics"]["accuracy"], 2), "alone": CLASS_LABELS_ALONE[4]}


def assigned_reading(meta: dict[str, Any]) -> str:
    """What giving each part type a unit of its own did, when that is the shipped recipe ("" otherwise)."""
    taught = taught_parts(meta["train_config"]) or {}
    if not taught.get("units"):
        return ""
    t = meta["metrics"]["dissection"]["targets"]
    parts, objects = t["part_best_iou_conv2_5"], t["object_best_iou_conv5"]
    low_part, low_object = min(parts, key=parts.__getitem__), min(objects, key=objects.__getitem__)
    layer = f"conv{taught['layer']}"
    best_unit = t.get("part_best_unit_conv2_5", {})
    own = [p for p, k in taught["units"].items() if best_unit.get(p) == f"{layer} #{k}"]
    return snippet(
        "assigned_reading", layer=layer, others=meta["net"]["widths"][taught["layer"] - 1] - len(parts),
        parts=reached(parts), low_part=f"{low_part} {parts[low_part]:.2f}", objects=reached(objects),
        low_object=f"{low_object} {objects[low_object]:.2f}", accuracy=pct(meta["metrics"]["accuracy"], 2),
        known=bool(best_unit), own=len(own), count=len(parts),
        not_own=and_list([p for p in parts if p not in own]) if len(own) < len(parts) else "",
    )

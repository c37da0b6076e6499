"""Network Dissection of the tiny model on the parts world, beside an untrained twin.

For every unit of every conv layer (after its ReLU) the unit's map is upsampled to the mask
resolution in line with the network's geometry, thresholded at that unit's top quantile over
all K images, and compared with every concept mask (12 part types and the 11 object classes)
by IoU (models/analysis/concepts.py). A plain resize that stretches the map over the picture
would misplace a conv5 unit by up to half a unit's stride at the edges, and small parts (an
eye is a few percent of the picture) would then be missed by units that do find them. The
quantile is matched to the concept's coverage and reported with each number.

Every unit is also probed with gratings (models/analysis/selectivity.py), each layer's best
combination of units and its ideal unit are measured (models/analysis/probe.py), and every
number is reported beside the same number for an untrained twin (same architecture, random
init), the control that says which detectors training made.

``layerscope dissect --model tiny --seed 3031 --images 500 --json``
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from models import world
from models.analysis import jobs, probe
from models.analysis.concepts import (
    CONV_LAYERS,
    DETECTOR_IOU,
    Alignment,
    Concepts,
    iou_table,
    layer_activations,
    layer_alignment,
    matched_quantiles,
    world_concepts,
)
from models.analysis.plots import plot, plot_conv1_snapshots
from models.analysis.selectivity import COLOUR_MIN, OSI_MIN, selectivity
from models.analysis.summary import (
    check_targets,
    classify_unit,
    format_table,
    per_unit_file,
    summarize,
    summary_for_metadata,
)
from models.nets import MiniAlexNet
from models.plotting import has_matplotlib
from models.preprocess import normalize_samples
from models.world import seeds
from models.zoo.tinyweights import DISSECTION_FILE, read_meta, write_meta


def dissect_activations(acts: dict[str, torch.Tensor], concepts: Concepts,
                        quantiles: Sequence[float] | None = None,
                        alignment: dict[str, Alignment] | None = None) -> dict[str, list[dict[str, Any]]]:
    """title -> per-unit best concept: [{unit, concept, kind, iou, quantile}, ...].

    Works on any activations and masks, so a test can dissect a hand-made model.
    ``alignment``: per title, where the map sits on the input (default: stretched).
    """
    qs = list(quantiles) if quantiles is not None else matched_quantiles(concepts.fractions())
    results: dict[str, list[dict[str, Any]]] = {}
    for title, a in acts.items():
        iou, _ = iou_table(a, concepts, qs, align=(alignment or {}).get(title))
        best = iou.argmax(1)
        results[title] = [
            {"unit": u, "concept": concepts.names[int(b)], "kind": concepts.kinds[int(b)],
             "iou": round(float(iou[u, b]), 4), "quantile": qs[int(b)],
             "per_concept": [round(float(x), 4) for x in iou[u]]}
            for u, b in enumerate(best)
        ]
    return results


def within_class_iou(acts: dict[str, torch.Tensor], concepts: Concepts, labels: Sequence[str],
                     parts_of: Mapping[str, Sequence[str]],
                     alignment: dict[str, Alignment] | None = None) -> dict[str, dict[str, dict[str, Any]]]:
    """part -> class -> {iou, layer, unit}: the best single unit when only that class's pictures are dissected.

    The same method on a smaller set: thresholds (each unit's top quantile, matched to the
    part's coverage) and IoU come from the pictures of one class alone. A part type that
    looks different in each class, or whose unit also fires on other classes' pictures,
    can miss over all pictures and still have a unit within a class; a part no unit finds
    even there is not represented on its own at all. Which unit wins tells the two apart.
    """
    owner = np.asarray(labels)
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for cls, parts in parts_of.items():
        idx = torch.from_numpy(np.flatnonzero(owner == cls))
        if len(idx) == 0:
            continue
        cols = [concepts.names.index(p) for p in parts]
        sub = Concepts(list(parts), [concepts.kinds[k] for k in cols], concepts.masks[idx][:, cols])
        qs = matched_quantiles(sub.fractions())
        best: dict[str, dict[str, Any]] = {p: {"iou": -1.0} for p in parts}
        for title, a in acts.items():
            iou, _ = iou_table(a[idx], sub, qs, align=(alignment or {}).get(title))
            top, unit = iou.max(0)
            for k, p in enumerate(parts):
                if float(top[k]) > best[p]["iou"]:
                    best[p] = {"iou": round(float(top[k]), 4), "layer": title, "unit": int(unit[k])}
        for p in parts:
            out.setdefault(p, {})[cls] = best[p]
    return out


class Pictures:
    """The dissection's pictures and concepts, and the probes' fitting pictures, for one input size."""

    def __init__(self, seed: int, images: int, meta: dict[str, Any]) -> None:
        size = int(meta["input_size"])
        self.samples = [world.generate(seed, i, size) for i in range(images)]
        self.full = world_concepts(self.samples, size)  # input resolution: the ideal units are built from it
        self.concepts = self.full.downsampled(size // 2)
        self.x = normalize_samples(self.samples, meta)
        self.quantiles = matched_quantiles(self.concepts.fractions())
        # Probes are fitted on other images than the ones they are scored on (models/analysis/probe.py).
        fit_samples = [world.generate(seeds.PROBES, i, size) for i in range(images)]
        self.fit_x = normalize_samples(fit_samples, meta)
        self.fit_masks = world_concepts(fit_samples, size).masks


def measure(net: nn.Module, pics: Pictures, alignment: dict[str, Alignment],
            meta: dict[str, Any]) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """One network's units, layer summaries (with probe IoU) and within-class IoU; and its activations."""
    concepts, qs = pics.concepts, pics.quantiles
    acts = layer_activations(net, pics.x, CONV_LAYERS)
    units = dissect_activations(acts, concepts, qs, alignment)
    fit_acts = layer_activations(net, pics.fit_x, CONV_LAYERS)
    probes = {t: probe.probe_iou(fit_acts[t], pics.fit_masks, acts[t], concepts, qs, alignment[t]) for t in acts}
    del fit_acts
    sel = selectivity(net, CONV_LAYERS, int(meta["input_size"]), meta["mean"], meta["std"])
    for title, rows in units.items():
        for r in rows:
            r["osi"] = round(float(sel[title]["osi"][r["unit"]]), 4)
            r["preferred_deg"] = float(sel[title]["preferred_deg"][r["unit"]])
            r["colour"] = round(float(sel[title]["colour"][r["unit"]]), 4)
            r["category"] = classify_unit(r)
    layers = summarize(units, concepts.names, concepts.kinds)
    for t, iou in probes.items():
        layers[t]["probe_iou"] = {c: round(float(v), 4) for c, v in zip(concepts.names, iou, strict=True)}
    deep = {t: a for t, a in acts.items() if t != "conv1"}
    within = within_class_iou(deep, concepts, [s.class_name for s in pics.samples], world.CLASS_PARTS, alignment)
    return {"units": units, "layers": layers, "within_class": within}, acts


def run(model: nn.Module, meta: dict[str, Any], seed: int, images: int,
        twin_seed: int = 12345) -> dict[str, Any]:
    """Dissect ``model`` and its untrained twin on ``images`` fresh images of world ``seed``."""
    size = int(meta["input_size"])
    pics = Pictures(seed, images, meta)
    concepts, qs = pics.concepts, pics.quantiles
    torch.manual_seed(twin_seed)
    twin = MiniAlexNet(getattr(model, "config", None)).eval()
    report: dict[str, Any] = {
        "seed": seed, "images": images, "mask_size": size // 2,
        "concepts": concepts.names, "kinds": concepts.kinds,
        "concept_fraction": [round(float(f), 5) for f in concepts.fractions()],
        "quantile": dict(zip(concepts.names, qs, strict=True)),
        "detector_iou": DETECTOR_IOU, "osi_min": OSI_MIN, "colour_min": COLOUR_MIN,
    }
    alignment = layer_alignment(twin, size)
    report["alignment"] = {t: {"offset": a.offset, "stride": a.stride} for t, a in alignment.items()}
    report["probe_seed"] = seeds.PROBES
    for label, net in (("trained", model), ("untrained", twin)):
        report[label], acts = measure(net, pics, alignment, meta)
    # The ideal unit of each layer: the concept itself at that layer's resolution.
    report["ceiling_iou"] = {}
    for t, a in acts.items():
        iou = probe.ceiling(pics.full.masks, concepts, qs, alignment[t], a.shape[-1])
        report["ceiling_iou"][t] = {c: round(float(v), 4) for c, v in zip(concepts.names, iou, strict=True)}
    report["targets"] = check_targets(report)
    return report


def write(report: dict[str, Any], out: Path) -> None:
    """tiny-dissection.json (the page's per-unit file), the plots and tiny.json's dissection summary."""
    (out / DISSECTION_FILE).write_text(json.dumps(per_unit_file(report)) + "\n")
    meta = read_meta(out)
    if has_matplotlib():  # a test extra, not a runtime dependency
        plot(report, out / "tiny-dissection.png")
        plot_conv1_snapshots(out, meta, out / "tiny-conv1.png")
    meta["metrics"]["dissection"] = summary_for_metadata(report)
    write_meta(meta, out)


def main(argv: list[str] | None = None) -> int:
    a = jobs.parser("layerscope dissect", __doc__, seeds.DISSECTION, 500,
                    "write tiny-dissection.json, the plot and tiny.json's dissection summary").parse_args(argv)
    report = jobs.run(a, lambda model, meta: run(model, meta, a.seed, a.images))
    if a.write_metadata:
        write(report, Path(a.weights_dir))
    print(json.dumps(summary_for_metadata(report)) if a.json else format_table(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

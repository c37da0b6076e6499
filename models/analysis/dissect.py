"""Network Dissection of the tiny model on the parts world, beside an untrained twin.

For every unit of every conv layer (after its ReLU) the unit's map is upsampled
bilinearly to the mask resolution, thresholded at that unit's top quantile over all K
images, and compared with every concept mask (12 part types and the 11 object classes);
IoU = |unit region AND concept| / |unit region OR concept|, summed over the K images.

Upsampling is aligned with the network's geometry (models/geometry.py): map pixel i sits
at the centre of its receptive field, ``offset + i * stride`` input pixels, and values in
between are interpolated (clamped at the border). A plain resize that stretches the map
over the picture would misplace a conv5 unit by up to half a unit's stride at the edges,
and small parts (an eye is a few percent of the picture) would then be missed by units
that do find them.

The quantile is matched to the concept: a concept covering a fraction f of all pixels
is compared with the unit's top-f region, taken from a fixed ladder of quantiles (0.999
... 0.9), because a 0.5 % region cannot match a 5 % concept (IoU ceiling
min(q, f) / max(q, f)). The quantile used is reported with each number.

Then every unit is probed with full-field gratings: luminance gratings at 8 orientations
give an orientation selectivity index, chromatic (isoluminant) gratings against
luminance gratings of equal contrast give a colour index. Every number is reported
beside the same number for an untrained twin (same architecture, random init), the
control that says which detectors training made.

``layerscope dissect --model tiny --seed 3031 --images 500 --json``
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from models import world
from models.analysis import jobs
from models.capture import capture
from models.geometry import sequential_geometry
from models.nets import MiniAlexNet
from models.zoo.tinyweights import read_meta, write_meta

CONV_LAYERS: dict[str, str] = {
    "conv1": "features.1", "conv2": "features.4", "conv3": "features.7",
    "conv4": "features.9", "conv5": "features.11",
}
QUANTILE_LADDER: tuple[float, ...] = (0.999, 0.995, 0.99, 0.98, 0.95, 0.9)
DETECTOR_IOU = 0.10  # a unit counts as a part/object detector at or above this IoU
TARGET_IOU = 0.20  # the bar for "this part has a detector"
OSI_MIN = 0.5  # orientation-selective: orthogonal response at most a third of preferred
COLOUR_MIN = 1 / 3  # colour-selective: chromatic response at least twice the luminance one
DEFAULT_SEED = 3031  # never used by training (1), validation (7) or evaluation (2026)


@dataclass(frozen=True)
class Alignment:
    """Where a map's pixels sit on the input: pixel i's centre is ``offset + i * stride``."""

    offset: float
    stride: float
    input_size: int


def upsample(acts: torch.Tensor, size: int, align: Alignment | None = None) -> torch.Tensor:
    """B x C x h x w maps -> B x C x size x size, over an input of ``align.input_size`` px.

    Without ``align`` the map is stretched over the whole picture (plain bilinear resize).
    """
    if align is None:
        return F.interpolate(acts, size=(size, size), mode="bilinear", align_corners=False)
    h, w = acts.shape[-2:]
    # Centre of each output pixel in input coordinates, then in map coordinates.
    centres = (torch.arange(size, dtype=torch.float32) + 0.5) * (align.input_size / size) - 0.5
    def normalized(extent: int) -> torch.Tensor:
        u = (centres - align.offset) / align.stride
        return 2 * u / max(extent - 1, 1) - 1
    gy, gx = torch.meshgrid(normalized(h), normalized(w), indexing="ij")
    grid = torch.stack([gx, gy], dim=-1).expand(acts.shape[0], size, size, 2)
    return F.grid_sample(acts, grid, mode="bilinear", padding_mode="border", align_corners=True)


@dataclass
class Concepts:
    """Concept masks for N images at the mask resolution."""

    names: list[str]
    kinds: list[str]  # "part" or "object" per name
    masks: torch.Tensor  # bool N x K x S x S

    def fractions(self) -> torch.Tensor:
        return self.masks.float().mean(dim=(0, 2, 3))

    def downsampled(self, mask_size: int) -> Concepts:
        """The same concepts on a coarser grid: area pooling, then majority (as Broden's masks are)."""
        if mask_size == self.masks.shape[-1]:
            return self
        return Concepts(self.names, self.kinds, F.adaptive_avg_pool2d(self.masks.float(), mask_size) >= 0.5)


def world_concepts(samples: Sequence[world.Sample], mask_size: int) -> Concepts:
    """Part masks and per-class object masks, area-downsampled to ``mask_size``."""
    names = list(world.PARTS) + list(world.CLASSES)
    kinds = ["part"] * len(world.PARTS) + ["object"] * len(world.CLASSES)
    n, size = len(samples), samples[0].image.shape[0]
    masks = np.zeros((n, len(names), size, size), dtype=bool)
    for i, s in enumerate(samples):
        for k, p in enumerate(world.PARTS):
            masks[i, k] = s.part_masks[p]
        masks[i, len(world.PARTS) + s.label] = s.object_mask
    return Concepts(names, kinds, torch.from_numpy(masks)).downsampled(mask_size)


def matched_quantiles(fractions: torch.Tensor, ladder: Sequence[float] = QUANTILE_LADDER) -> list[float]:
    """For each concept the ladder quantile whose top region best matches its coverage."""
    tops = np.array([1 - q for q in ladder])
    out = []
    for f in fractions.tolist():
        f = max(f, 1e-6)
        out.append(ladder[int(np.argmin(np.abs(np.log(tops) - math.log(f))))])
    return out


@torch.no_grad()
def layer_activations(model: nn.Module, inputs: torch.Tensor, layers: dict[str, str],
                      batch: int = 50) -> dict[str, torch.Tensor]:
    """title -> N x C x h x w activations of the named modules (forward hooks via capture)."""
    model.eval()
    chunks: dict[str, list[torch.Tensor]] = {t: [] for t in layers}
    for i in range(0, len(inputs), batch):
        with capture(model, list(layers.values())) as out:
            model(inputs[i:i + batch])
        for title, name in layers.items():
            chunks[title].append(out[name])
    return {t: torch.cat(c) for t, c in chunks.items()}


def unit_thresholds(acts: torch.Tensor, mask_size: int, quantiles: Sequence[float],
                    samples_per_image: int = 256, batch: int = 16, seed: int = 0,
                    align: Alignment | None = None) -> torch.Tensor:
    """C x Q thresholds: per-unit quantiles of the upsampled maps over all images.

    Estimated from a fixed random sample of pixel positions of every upsampled map (the
    full upsampled set would not fit in memory); positions are seeded, so repeatable.
    """
    gen = torch.Generator().manual_seed(seed)
    values = []
    pixels = mask_size * mask_size
    for i in range(0, len(acts), batch):
        up = upsample(acts[i:i + batch], mask_size, align)
        flat = up.flatten(2)  # B x C x P
        idx = torch.randint(0, pixels, (flat.shape[0], 1, min(samples_per_image, pixels)), generator=gen)
        values.append(flat.gather(2, idx.expand(-1, flat.shape[1], -1)).permute(1, 0, 2).reshape(flat.shape[1], -1))
    v, _ = torch.cat(values, dim=1).sort(dim=1)
    m = v.shape[1]
    cols = [v[:, min(m - 1, round(q * (m - 1)))] for q in quantiles]
    return torch.stack(cols, dim=1)


def iou_table(acts: torch.Tensor, concepts: Concepts, quantiles: Sequence[float],
              batch: int = 16, align: Alignment | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """C x K IoU of every unit with every concept at that concept's quantile; and thresholds."""
    n, c = acts.shape[:2]
    size = concepts.masks.shape[-1]
    levels = sorted(set(quantiles))
    level_of = [levels.index(q) for q in quantiles]
    thr = unit_thresholds(acts, size, levels, align=align)  # C x L
    k = len(concepts.names)
    inter = torch.zeros(c, k, dtype=torch.float64)
    region = torch.zeros(c, len(levels), dtype=torch.float64)
    area = torch.zeros(k, dtype=torch.float64)
    groups = [[j for j in range(k) if level_of[j] == li] for li in range(len(levels))]
    for i in range(0, n, batch):
        up = upsample(acts[i:i + batch], size, align)
        up = up.permute(1, 0, 2, 3).reshape(c, -1)  # C x P
        m = concepts.masks[i:i + batch].permute(0, 2, 3, 1).reshape(-1, k).float()  # P x K
        area += m.sum(0).double()
        for li, cols in enumerate(groups):
            if not cols:
                continue
            on = (up > thr[:, li:li + 1]).float()
            region[:, li] += on.sum(1).double()
            inter[:, cols] += (on @ m[:, cols]).double()
    union = region[:, level_of] + area.view(1, -1) - inter
    return (inter / union.clamp(min=1)).float(), thr


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


# ------------------------------------------------------------------------ selectivity

def _grating(size: int, theta: float, period: float, phase: float, direction: Sequence[float]) -> torch.Tensor:
    """A full-field sine grating in [0, 1] RGB, modulated along an RGB ``direction``."""
    yy, xx = torch.meshgrid(torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32),
                            indexing="ij")
    wave = torch.sin(2 * math.pi * (xx * math.cos(theta) + yy * math.sin(theta)) / period + phase)
    d = torch.tensor(direction, dtype=torch.float32).view(3, 1, 1)
    return (0.5 + d * wave).clamp(0, 1)


ORIENTATIONS = [math.pi * k / 8 for k in range(8)]
PERIODS = (6.0, 12.0, 24.0, 48.0)
PHASES = [math.pi * k / 2 for k in range(4)]
# Luminance and 6 chromatic directions of equal RGB norm (0.6): chromatic ones are
# orthogonal to grey, so they change hue at constant mean intensity.
_NORM = 0.6


def _directions() -> tuple[list[float], list[list[float]]]:
    lum = [_NORM / math.sqrt(3)] * 3
    e1 = np.array([1.0, -1.0, 0.0]) / math.sqrt(2)
    e2 = np.array([-1.0, -1.0, 2.0]) / math.sqrt(6)
    chroma = [list(_NORM * (math.cos(a) * e1 + math.sin(a) * e2)) for a in np.arange(6) * math.pi / 6]
    return lum, chroma


@torch.no_grad()
def selectivity(model: nn.Module, layers: dict[str, str], size: int, mean: Sequence[float],
                std: Sequence[float]) -> dict[str, dict[str, np.ndarray]]:
    """Per unit: orientation selectivity index, preferred orientation, colour index.

    Response = spatial mean of the unit's map. OSI = (r_pref - r_orth) / (r_pref + r_orth)
    with r(theta) the best response over periods and phases; colour index =
    (r_chroma - r_lum) / (r_chroma + r_lum) with each the best response over all gratings.
    """
    lum, chroma = _directions()
    stims, tags = [], []
    for ti, th in enumerate(ORIENTATIONS):
        for per in PERIODS:
            for ph in PHASES:
                stims.append(_grating(size, th, per, ph, lum))
                tags.append(("lum", ti))
                for d in chroma[::2] if ti % 2 else chroma:  # fewer chromatic gratings suffice
                    stims.append(_grating(size, th, per, ph, d))
                    tags.append(("chroma", ti))
    x = (torch.stack(stims) - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    acts = layer_activations(model, x, layers)
    is_lum = torch.tensor([t[0] == "lum" for t in tags])
    orient = torch.tensor([t[1] for t in tags])
    out: dict[str, dict[str, np.ndarray]] = {}
    for title, a in acts.items():
        r = a.mean(dim=(2, 3))  # S x C
        r_or = torch.stack([r[is_lum & (orient == k)].max(0).values for k in range(len(ORIENTATIONS))])  # O x C
        pref = r_or.argmax(0)
        orth = (pref + len(ORIENTATIONS) // 2) % len(ORIENTATIONS)
        rp = r_or.gather(0, pref.view(1, -1))[0]
        ro = r_or.gather(0, orth.view(1, -1))[0]
        osi = (rp - ro) / (rp + ro).clamp(min=1e-8)
        rl, rc = r[is_lum].max(0).values, r[~is_lum].max(0).values
        col = (rc - rl) / (rc + rl).clamp(min=1e-8)
        alive = (rp > 1e-6) | (rc > 1e-6)
        out[title] = {
            "osi": np.where(alive.numpy(), osi.numpy(), 0.0),
            "preferred_deg": (pref.numpy() * 180.0 / len(ORIENTATIONS)),
            "colour": np.where(alive.numpy(), col.numpy(), 0.0),
        }
    return out


# --------------------------------------------------------------------------- reports

def classify_unit(u: dict[str, Any]) -> str:
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


def run(model: nn.Module, meta: dict[str, Any], seed: int, images: int,
        twin_seed: int = 12345) -> dict[str, Any]:
    """Dissect ``model`` and its untrained twin on ``images`` fresh images of world ``seed``."""
    from models.analysis import probe  # probe builds on this module's IoU, so it is imported late

    size = int(meta["input_size"])
    mask_size = size // 2
    samples = [world.generate(seed, i, size) for i in range(images)]
    full = world_concepts(samples, size)  # input resolution: the ideal units are built from it
    concepts = full.downsampled(mask_size)
    x = normalized_images(samples, meta)
    qs = matched_quantiles(concepts.fractions())
    torch.manual_seed(twin_seed)
    twin = MiniAlexNet(getattr(model, "config", None)).eval()
    report: dict[str, Any] = {
        "seed": seed, "images": images, "mask_size": mask_size,
        "concepts": concepts.names, "kinds": concepts.kinds,
        "concept_fraction": [round(float(f), 5) for f in concepts.fractions()],
        "quantile": dict(zip(concepts.names, qs, strict=True)),
        "detector_iou": DETECTOR_IOU, "osi_min": OSI_MIN, "colour_min": COLOUR_MIN,
    }
    alignment = layer_alignment(twin, size)
    report["alignment"] = {t: {"offset": a.offset, "stride": a.stride} for t, a in alignment.items()}
    # Probes are fitted on other images than the ones they are scored on (models/probe.py).
    fit_samples = [world.generate(probe.PROBE_SEED, i, size) for i in range(images)]
    fit_x = normalized_images(fit_samples, meta)
    fit_masks = world_concepts(fit_samples, size).masks
    report["probe_seed"] = probe.PROBE_SEED
    for label, net in (("trained", model), ("untrained", twin)):
        acts = layer_activations(net, x, CONV_LAYERS)
        units = dissect_activations(acts, concepts, qs, alignment)
        fit_acts = layer_activations(net, fit_x, CONV_LAYERS)
        probes = {t: probe.probe_iou(fit_acts[t], fit_masks, acts[t], concepts, qs, alignment[t]) for t in acts}
        del fit_acts
        sel = selectivity(net, CONV_LAYERS, size, meta["mean"], meta["std"])
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
        within = within_class_iou(deep, concepts, [s.class_name for s in samples], world.CLASS_PARTS, alignment)
        report[label] = {"units": units, "layers": layers, "within_class": within}
    # The ideal unit of each layer: the concept itself at that layer's resolution.
    report["ceiling_iou"] = {}
    for t, a in acts.items():
        iou = probe.ceiling(full.masks, concepts, qs, alignment[t], a.shape[-1])
        report["ceiling_iou"][t] = {c: round(float(v), 4) for c, v in zip(concepts.names, iou, strict=True)}
    report["targets"] = check_targets(report)
    return report


def normalized_images(samples: Sequence[world.Sample], meta: dict[str, Any]) -> torch.Tensor:
    """Generated images as the network's N x 3 x S x S input (the model's normalization)."""
    x = torch.from_numpy(np.stack([s.image for s in samples])).permute(0, 3, 1, 2).float().div_(255.0)
    return (x - torch.tensor(meta["mean"]).view(1, 3, 1, 1)) / torch.tensor(meta["std"]).view(1, 3, 1, 1)


def layer_alignment(model: nn.Module, input_size: int) -> dict[str, Alignment]:
    """Each dissected layer's geometry on an ``input_size`` picture (models/geometry.py)."""
    features = model.features
    assert isinstance(features, nn.Sequential)
    geometry = sequential_geometry(features, "features")
    return {t: Alignment(geometry[name].offset, geometry[name].stride, input_size) for t, name in CONV_LAYERS.items()}


def check_targets(report: dict[str, Any]) -> dict[str, Any]:
    """The issue's dissection targets, each with the numbers that decide it."""
    layers = report["trained"]["layers"]
    deep = ["conv2", "conv3", "conv4", "conv5"]
    part_best = {p: max(layers[t]["best_iou"][p] for t in deep) for p in world.PARTS}
    # Which unit that is ("conv4 #5"): with a recipe that gave each part type a unit, whether
    # the best detector is the taught unit or another one says what the teaching did.
    where = {p: deep[int(np.argmax([layers[t]["best_iou"][p] for t in deep]))] for p in world.PARTS}
    part_unit = {p: f"{where[p]} #{layers[where[p]]['best_unit'][p]}" for p in world.PARTS
                 if "best_unit" in layers[where[p]]}
    # "scrambled" is not an object: any class's parts in a wrong arrangement, so no unit's
    # region can match every scrambled object. It is reported, not counted.
    obj_best = {c: layers["conv5"]["best_iou"][c] for c in world.CLASSES if c != "scrambled"}
    # Not targets: what the best combination of units (models/probe.py) reaches, and what
    # the layers' resolution allows, so a miss can be read as "spread over units" or
    # "out of reach".
    more: dict[str, Any] = {}
    if "probe_iou" in layers["conv5"]:
        more["part_best_probe_iou_conv2_5"] = {p: max(layers[t]["probe_iou"][p] for t in deep) for p in world.PARTS}
        more["object_best_probe_iou_conv5"] = {c: layers["conv5"]["probe_iou"][c] for c in obj_best}
    if "ceiling_iou" in report:
        more["part_ceiling_iou_conv5"] = {p: report["ceiling_iou"]["conv5"][p] for p in world.PARTS}
        more["object_ceiling_iou_conv5"] = {c: report["ceiling_iou"]["conv5"][c] for c in obj_best}
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
        **more,
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


def plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    titles = list(CONV_LAYERS)
    fig, ax = plt.subplots(1, 3, figsize=(13, 3.6))
    xs = np.arange(len(titles))
    for off, label, alpha in ((-0.2, "trained", 1.0), (0.2, "untrained", 0.45)):
        layers = report[label]["layers"]
        bottom = np.zeros(len(titles))
        units = report[label]["units"]
        for cat, color in (("edge/colour", "#4c72b0"), ("part", "#dd8452"), ("object", "#55a868")):
            # Categories are exclusive (detector first), so the stacked bars add up.
            vals = np.array([sum(r["category"] == cat for r in units[t]) / len(units[t]) for t in titles])
            ax[0].bar(xs + off, vals, 0.38, bottom=bottom, color=color, alpha=alpha,
                      label=f"{cat} ({label})")
            bottom += vals
    ax[0].set_xticks(xs, titles)
    ax[0].set(ylabel="share of units", title="unit categories (left trained, right untrained)")
    ax[0].legend(fontsize=6, loc="upper left")
    objects = [c for c in world.CLASSES if c != "scrambled"]
    for k, (kind, names) in enumerate((("part", world.PARTS), ("object", objects))):
        def mean_of(per_layer: dict[str, dict[str, float]], names: Sequence[str] = names) -> list[float]:
            return [float(np.mean([per_layer[t][c] for c in names])) for t in titles]
        for label, style in (("trained", "-o"), ("untrained", "--x")):
            layers = report[label]["layers"]
            ax[k + 1].plot(titles, mean_of({t: layers[t]["best_iou"] for t in titles}), style,
                           label=f"best unit, {label}")
            if "probe_iou" in layers[titles[0]]:
                ax[k + 1].plot(titles, mean_of({t: layers[t]["probe_iou"] for t in titles}), style, alpha=0.5,
                               label=f"best combination of units, {label}")
        if "ceiling_iou" in report:
            ax[k + 1].plot(titles, mean_of(report["ceiling_iou"]), ":", color="grey",
                           label="ideal unit (the layer's resolution)")
        ax[k + 1].axhline(TARGET_IOU, color="grey", lw=0.8, ls=":")
        ax[k + 1].set(title=f"{kind} concepts: mean IoU", ylim=(0, 1.0))
        ax[k + 1].legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_conv1_snapshots(weights_dir: Path, meta: dict[str, Any], path: Path) -> None:
    """conv1 filters at every training snapshot, each filter scaled to its own range."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from models.zoo.tinyweights import load_checkpoint

    ckpts = meta["checkpoints"]
    fig, axes = plt.subplots(1, len(ckpts), figsize=(3.2 * len(ckpts), 3.4))
    for ax, c in zip(np.atleast_1d(axes), ckpts, strict=True):
        conv1 = load_checkpoint(weights_dir / c["file"]).features[0]
        assert isinstance(conv1, nn.Conv2d)
        w = conv1.weight.detach()
        n, k = w.shape[0], w.shape[-1]
        cols = math.ceil(math.sqrt(n))
        grid = np.ones((cols * (k + 1), cols * (k + 1), 3))
        for i in range(n):
            f = w[i].permute(1, 2, 0).numpy()
            f = (f - f.min()) / max(float(np.ptp(f)), 1e-8)
            r, q = divmod(i, cols)
            grid[r * (k + 1):r * (k + 1) + k, q * (k + 1):q * (k + 1) + k] = f
        ax.imshow(grid, interpolation="nearest")
        ax.set_title(f"{c['name']} (step {c['step']})")
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def format_table(report: dict[str, Any]) -> str:
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


def markdown_tables(summary: dict[str, Any]) -> str:
    """The model card's tables, from tiny.json's dissection summary (trained | untrained)."""
    tr, un = summary["trained"], summary["untrained"]

    def pair(t: str, key: str, fmt: str = "{:.2f}") -> str:
        return f"{fmt.format(tr[t][key])} \\| {fmt.format(un[t][key])}"

    lines = ["| layer | units | oriented | colour | edge or colour | part detectors | object detectors | "
             "mean best IoU |", "|---|---|---|---|---|---|---|---|"]
    for t in tr:
        lines.append(f"| {t} | {tr[t]['units']} | {pair(t, 'oriented')} | {pair(t, 'colour')} | "
                     f"{pair(t, 'edge_or_colour')} | {pair(t, 'part_detectors')} | {pair(t, 'object_detectors')} | "
                     f"{pair(t, 'mean_best_iou', '{:.3f}')} |")
    concepts = list(next(iter(tr.values()))["best_iou"])
    lines += ["", "| concept | quantile | " + " | ".join(tr) + " |", "|---|---|" + "---|" * len(tr)]
    for c in concepts:
        cells = [f"{tr[t]['best_iou'][c]:.2f} \\| {un[t]['best_iou'][c]:.2f}" for t in tr]
        lines.append(f"| {c} | {summary['quantile'][c]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    a = jobs.parser("layerscope dissect", __doc__, DEFAULT_SEED, 500,
                    "write tiny-dissection.json, the plot and tiny.json's dissection summary").parse_args(argv)
    report = jobs.run(a, lambda model, meta: run(model, meta, a.seed, a.images))
    out = Path(a.weights_dir)
    if a.write_metadata:
        (out / "tiny-dissection.json").write_text(json.dumps(per_unit_file(report)) + "\n")
        from models.training.train import has_matplotlib

        meta = read_meta(out)
        if has_matplotlib():  # a test extra, not a runtime dependency
            plot(report, out / "tiny-dissection.png")
            plot_conv1_snapshots(out, meta, out / "tiny-conv1.png")
        meta["metrics"]["dissection"] = summary_for_metadata(report)
        write_meta(meta, out)
    print(json.dumps(summary_for_metadata(report)) if a.json else format_table(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


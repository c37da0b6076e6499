"""Write the tiny model's card (models/weights/MODEL_CARD.md) from the measured numbers.

Every number in the card comes from files the tools write: ``tiny.json`` (training,
``evaluate --write-metadata``, ``dissect --write-metadata``, ``reliance --write-metadata``), ``explain/metrics.json``
(scripts/precompute_explain.py: Grad-CAM, feature visualizations, the unfamiliar-input
score), when present ``tiny-reproduction.json`` (a second training run with the
shipped config), and ``models/card/runs.toml`` (the runs tried before the shipped one). The prose is
``models/card/card.md.j2``. Regenerating after a retrain keeps prose and numbers in step:

    python -m models.card
    python -m models.card --record-reproduction /tmp/run2   # after `layerscope train --out-dir /tmp/run2`
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from models import world
from models.analysis.concepts import CONV_LAYERS, TARGET_IOU
from models.card import explained, measures, recipe, runs
from models.card.text import pct, reached, render_card, table
from models.commandline import Parser
from models.world import seeds
from models.zoo.tinyweights import WEIGHTS_DIR, read_meta, taught_parts

CARD_FILE = "MODEL_CARD.md"
REPRODUCTION_FILE = "tiny-reproduction.json"
# The dissection's layers, by title and module name.
LAYER_OF = CONV_LAYERS
TITLES = measures.TITLES

PARTS_OF = {
    "car": "wheel, window, door, roof", "bus": "wheel, window, door", "bicycle": "wheel",
    "house": "window, door, roof", "tree": "trunk, leaf, petal", "flower": "trunk, leaf, petal",
    "face": "eye, mouth, ear, nose", "cat": "eye, mouth, ear, nose", "fish": "eye, mouth, fin",
    "boat": "window, fin",
    "scrambled": "the parts of a random class, rearranged: *flip* (parts mirrored top-to-bottom and turned "
                 "over), *scatter* (parts anywhere at any angle) or *swap* (parts trade places with parts of "
                 "another type)",
}


def map_sizes(meta: dict[str, Any]) -> dict[str, int]:
    """Spatial size of each conv layer's map for the card's 'choices' line."""
    import torch

    from models.capture import capture
    from models.nets import MiniAlexNet, NetConfig

    net = MiniAlexNet(NetConfig.from_dict(meta["net"])).eval()
    size = int(meta["input_size"])
    with torch.inference_mode(), capture(net, list(LAYER_OF.values())) as out:
        net(torch.zeros(1, 3, size, size))
    return {t: int(out[name].shape[-1]) for t, name in LAYER_OF.items()}


def model_context(meta: dict[str, Any], maps: dict[str, int]) -> dict[str, Any]:
    """The summary, *At a glance* and *Accuracy*: what the model is and how often it is right."""
    net, size, m = meta["net"], meta["input_size"], meta["metrics"]
    classes, per = meta["classes"], m["per_class_accuracy"]
    hardest = min(classes, key=per.__getitem__)
    glance = [
        ["classes", ", ".join(classes)],
        ["input", f"{size} x {size} RGB, mean {meta['mean']}, std {meta['std']} (torchvision "
                  f"`ImageClassification(crop_size={size}, resize_size={size})`)"],
        ["widths", f"conv {net['widths']}, fc {net['hidden']}-{net['hidden']}-{net['num_classes']}"],
        ["conv1", f"{net['conv1_kernel']}x{net['conv1_kernel']}, stride {net['conv1_stride']}, padding "
                  f"{net['conv1_padding']}"],
        ["maps", ", ".join(f"{t} {s}x{s}" for t, s in maps.items())],
        ["weights", f"`tiny.safetensors`, {meta['dtype']}, sha256 `{meta['sha256'][:16]}...`"],
        ["trained on", meta["trained_on"]],
    ]
    confusion = [[c] + [str(v) for v in row] for c, row in zip(classes, m["evaluation"]["confusion"], strict=True)]
    return {
        "meta": meta, "net": net, "size": size, "maps": maps, "classes": len(classes),
        "objects": runs.OBJECTS, "parts": len(world.PARTS), "visible": world.VISIBLE_PIXELS,
        "taught": taught_parts(meta["train_config"]), "glance": table(["", ""], glance),
        "accuracy": pct(m["accuracy"], 2), "met": m["accuracy"] >= 0.97, "evaluation": m["evaluation"],
        "hardest": hardest, "hardest_accuracy": pct(per[hardest]),
        "per_class": table(["class", *classes], [["accuracy", *(pct(per[c]) for c in classes)]]),
        "confusion": table(["", *(c[:5] for c in classes)], confusion),
        "fp16": pct(m["fp16_agreement"]),
        "parts_of": table(["class", "parts"], [[c, PARTS_OF[c]] for c in world.CLASSES]),
    }


def runs_context(meta: dict[str, Any]) -> dict[str, Any]:
    """*Runs tried*: the runs of runs.toml with the shipped one last, and what the runs show."""
    t = meta["metrics"]["dissection"]["targets"]
    m = meta["metrics"]
    parts, objects = t["part_best_iou_conv2_5"], t["object_best_iou_conv5"]
    combos = t.get("part_best_probe_iou_conv2_5", {})
    shipped = ["**shipped**", recipe.shipped_recipe(meta), pct(m["accuracy"], 2), f"{m['training_seconds'] / 60:.1f}",
               reached(parts), reached(objects), reached(combos) if combos else "not measured"]
    taught = taught_parts(meta["train_config"]) is not None
    tried = runs.tried(taught)
    missing = sorted((p for p, v in parts.items() if v < TARGET_IOU), key=lambda p: parts[p])
    reliance = m.get("reliance")
    return {
        "measured": runs.MEASURED, "evaluate_images": f"{runs.MEASURED['evaluate_images']:,}",
        "table": table(["run", "recipe", "accuracy", "training (min)", "parts with a unit >= 0.20",
                        "objects with a unit >= 0.20", "parts with a combination >= 0.20"],
                       [list(runs.run_row(r)) for r in tried] + [shipped]),
        "notes": [(r["name"], r["note"]) for r in tried if r["note"]],
        "gpu": runs.GPU, "draws": len(runs.GPU_DRAWS), "training_images": f"{runs.GPU['training_images']:,}",
        "gpu_table": table(["recipe (GPU draw)", "flags", "accuracy", "parts with a unit >= 0.20",
                            "objects with a unit >= 0.20", "below 0.20"], [list(r) for r in runs.GPU_DRAWS]),
        "parts": reached(parts), "objects": reached(objects), "every_object": t["every_object_detected"],
        "found": ", ".join(f"{p} {v:.2f}" for p, v in parts.items() if v >= TARGET_IOU) or "none",
        "missing": ", ".join(f"{p} {parts[p]:.2f}" for p in missing),
        "weak": ", ".join(f"{p} {combos[p]:.2f}" for p in missing if combos and combos[p] < TARGET_IOU),
        "eye_changed": pct(reliance["parts"]["eye"]["class_changed"], 0) if reliance else None,
        "dropout": measures.parts_dropout_context(meta), "assigned": measures.assigned_reading(meta),
    }


def context(meta: dict[str, Any], explain: dict[str, Any] | None, repro: dict[str, Any] | None,
            maps: dict[str, int]) -> dict[str, Any]:
    """Every value the card template quotes, computed and formatted."""
    d = meta["metrics"].get("dissection")
    return {
        "model": model_context(meta, maps), "training": recipe.training_context(meta, repro),
        "explain": explained.explain_context(explain), "conv5_ratio": explained.conv5_ratio(explain),
        "localizes": explained.LOCALIZES, "validation_seed": seeds.VALIDATION,
        "runs": runs_context(meta) if d else None,
        "dissection": d and {
            "d": d, **measures.dissection_tables(d), "concepts_parts": len(world.PARTS),
            "concepts_objects": len(world.CLASSES), "representation": measures.representation_context(d),
            "within": measures.within_class_context(d), "reliance": measures.reliance_context(meta),
            "targets": measures.targets_context(d["targets"]),
        },
    }


def render(meta: dict[str, Any], explain: dict[str, Any] | None, repro: dict[str, Any] | None,
           maps: dict[str, int]) -> str:
    return render_card(context(meta, explain, repro, maps))


def record_reproduction(run_dir: Path, folder: Path) -> dict[str, Any]:
    """Evaluate a second training run on the shipped evaluation's images; keep the numbers."""
    import time

    from models.analysis.evaluate import evaluate
    from models.zoo.tinyweights import load_tiny

    shipped = read_meta(folder)["metrics"]["evaluation"]
    model, meta = load_tiny(run_dir)
    result = evaluate(model, meta, shipped["seed"], shipped["images"])
    record = {
        "when": time.strftime("%Y-%m-%d", time.gmtime((run_dir / "tiny.safetensors").stat().st_mtime)),
        "training_seconds": meta["metrics"]["training_seconds"], "accuracy": result["accuracy"],
        "per_class_accuracy": result["per_class_accuracy"], "seed": shipped["seed"], "images": shipped["images"],
        "sha256": meta["sha256"], "train_config": meta["train_config"],
    }
    (folder / REPRODUCTION_FILE).write_text(json.dumps(record, indent=1) + "\n")
    return record


def read_json(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.exists() else None


def main(argv: list[str] | None = None) -> int:
    p = Parser(prog="python -m models.card", description=__doc__.splitlines()[0])
    p.add_argument("--weights-dir", default=str(WEIGHTS_DIR))
    p.add_argument("--record-reproduction", metavar="RUN_DIR",
                   help="first evaluate a second `layerscope train --out-dir RUN_DIR` run and keep its numbers")
    a = p.parse_args(argv)
    folder = Path(a.weights_dir)
    if a.record_reproduction:
        print(json.dumps(record_reproduction(Path(a.record_reproduction), folder)))
    meta = read_meta(folder)
    explain = read_json(folder / "explain" / "metrics.json")
    if explain and explain.get("weights_sha256") != meta["sha256"]:
        explain = None  # numbers of other weights never reach this card
    repro = read_json(folder / REPRODUCTION_FILE)
    (folder / CARD_FILE).write_text(render(meta, explain, repro, map_sizes(meta)))
    print(f"wrote {folder / CARD_FILE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

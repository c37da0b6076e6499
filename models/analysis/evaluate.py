"""Accuracy of the tiny model on freshly generated parts-world images.

``layerscope evaluate --model tiny --seed 2026 --images 2000 --json`` generates K images of
the evaluation's world seed (models/world/seeds.py), classifies them with the shipped weights
(loaded and sha256-checked by :func:`models.zoo.tinyweights.load_tiny`) and reports accuracy,
per-class accuracy and the confusion matrix (rows: true class, columns: predicted). Where the
weights' unfamiliar-input statistics ship (models/weights/explain/ood.npz, models/ood/), it
also reports the share of these familiar pictures the score flags, overall and per true
class (``ood_flagged``, ``ood_flagged_per_class``; None without statistics), from the same
forward pass.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from models import world
from models.analysis import jobs
from models.ood import OODStats, scores_and_logits
from models.preprocess import normalize
from models.world import seeds
from models.zoo.assets import ood_stats
from models.zoo.tinyweights import WEIGHTS_FILE, read_meta, write_meta


@torch.no_grad()
def evaluate(model: nn.Module, meta: dict[str, Any], seed: int, images: int, batch: int = 100,
             progress: bool = False, familiarity: OODStats | None = None) -> dict[str, Any]:
    """Accuracy, per-class accuracy and confusion matrix on ``images`` fresh images; with
    ``familiarity`` (the unfamiliar-input statistics), the shares of them it flags."""
    model.eval()
    classes: list[str] = meta["classes"]
    size = int(meta["input_size"])
    confusion = np.zeros((len(classes), len(classes)), dtype=np.int64)
    flagged = np.zeros(len(classes), dtype=np.int64)
    for start in tqdm(range(0, images, batch), disable=not progress, desc="evaluate"):
        x, y, _ = world.generate_batch(seed, start, min(batch, images - start), size)
        inputs = normalize(x, meta["mean"], meta["std"])
        if familiarity is None:
            pred = model(inputs).argmax(1).numpy()
        else:
            score, logits = scores_and_logits(familiarity, model, inputs)
            pred = logits.argmax(1)
            np.add.at(flagged, y, score > familiarity.threshold)
        np.add.at(confusion, (y, pred), 1)
    per_class = confusion.diagonal() / np.maximum(confusion.sum(1), 1)
    counts = np.maximum(confusion.sum(1), 1)
    ood: dict[str, Any] = {"ood_flagged": None, "ood_flagged_per_class": None}
    if familiarity is not None:
        ood = {"ood_method": familiarity.method, "ood_flagged": float(flagged.sum() / max(confusion.sum(), 1)),
               "ood_flagged_per_class": {c: round(float(f / n), 4) for c, f, n in zip(classes, flagged, counts,
                                                                                       strict=True)}}
    return {
        "seed": seed,
        "images": images,
        "accuracy": float(confusion.trace() / max(confusion.sum(), 1)),
        "per_class_accuracy": {c: round(float(a), 4) for c, a in zip(classes, per_class, strict=True)},
        "classes": classes,
        "confusion": confusion.tolist(),
        **ood,
    }


def format_report(result: dict[str, Any]) -> str:
    classes = result["classes"]
    lines = [f"accuracy {result['accuracy']:.4f} on {result['images']} images (world seed {result['seed']})"]
    lines += [f"  {c:10s} {a:.4f}" for c, a in result["per_class_accuracy"].items()]
    if result.get("ood_flagged") is not None:
        worst = max(result["ood_flagged_per_class"].items(), key=lambda item: item[1])
        lines.append(f"flagged unfamiliar ({result['ood_method']}): {result['ood_flagged']:.4f}, "
                     f"most in one class: {worst[0]} {worst[1]:.4f}")
    lines.append("confusion (rows true, columns predicted):")
    lines.append("           " + " ".join(f"{c[:5]:>5s}" for c in classes))
    for c, row in zip(classes, result["confusion"], strict=True):
        lines.append(f"  {c[:8]:8s} " + " ".join(f"{v:5d}" for v in row))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    a = jobs.parser("layerscope evaluate", __doc__, seeds.EVALUATION, 2000,
                    "store accuracy and per-class accuracy in tiny.json's metrics").parse_args(argv)
    familiarity = ood_stats(str(Path(a.weights_dir) / WEIGHTS_FILE))
    result = jobs.run(a, lambda model, meta: evaluate(model, meta, a.seed, a.images, progress=not a.json,
                                                      familiarity=familiarity))
    if a.write_metadata:
        # Metrics live beside the weights; the sha256 covers only the weights file.
        meta = read_meta(a.weights_dir)
        meta["metrics"].update({
            "accuracy": result["accuracy"],
            "per_class_accuracy": result["per_class_accuracy"],
            "evaluation": {"seed": a.seed, "images": a.images, "confusion": result["confusion"]},
        })
        write_meta(meta, Path(a.weights_dir))
    print(json.dumps(result) if a.json else format_report(result), file=sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

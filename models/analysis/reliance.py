"""How much the tiny model's answer rests on each part type: take the part away, watch the class.

Network Dissection (models/analysis/dissect.py) says which parts have a unit of their own;
this says which parts the classifier needs, on the dissection's own pictures
(models/world/seeds.py). For every picture the model classifies correctly, each part type it
shows (at least ``world.VISIBLE_PIXELS`` pixels of it) is left undrawn
(``world.generate(..., omit=part)``: the same picture, background, blur and noise, with
whatever the part covered showing through) and the picture is classified again. Per part
type: how often the predicted class changes, and the mean drop of the true class's probability.

Only real objects count: a scrambled picture without one of its misplaced parts is still
scrambled, or becomes some other arrangement, and mixing the two would blur both numbers.

``layerscope reliance --seed 3031 --images 1100 --json``
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from models import world
from models.analysis import jobs
from models.preprocess import normalize
from models.world import seeds
from models.zoo.tinyweights import read_meta, write_meta

SCRAMBLED = world.CLASSES.index("scrambled")


@torch.no_grad()
def probabilities(model: nn.Module, images: list[np.ndarray], meta: dict[str, Any], batch: int = 100) -> np.ndarray:
    """Softmax of the model over uint8 HxWx3 pictures, N x classes."""
    out = [torch.softmax(model(normalize(np.stack(images[i:i + batch]), meta["mean"], meta["std"])), 1).numpy()
           for i in range(0, len(images), batch)]
    return np.concatenate(out) if out else np.zeros((0, len(meta["classes"])), dtype=np.float32)


def reliance(model: nn.Module, meta: dict[str, Any], seed: int, images: int) -> dict[str, Any]:
    """Per part type: pictures tested, share whose class changed, mean true-class probability drop."""
    model.eval()
    size = int(meta["input_size"])
    samples = [world.generate(seed, i, size) for i in range(images)]
    labels = np.array([s.label for s in samples])
    intact = probabilities(model, [s.image for s in samples], meta)
    correct = (intact.argmax(1) == labels) & (labels != SCRAMBLED)
    parts: dict[str, dict[str, float | int]] = {}
    for part in world.PARTS:
        shown = [i for i, s in enumerate(samples)
                 if correct[i] and int(s.part_masks[part].sum()) >= world.VISIBLE_PIXELS]
        without = probabilities(model, [world.generate(seed, i, size, omit=part).image for i in shown], meta)
        truth = labels[shown]
        changed = without.argmax(1) != truth
        drop = intact[shown, truth] - without[np.arange(len(shown)), truth]
        parts[part] = {
            "images": len(shown),
            "class_changed": round(float(changed.mean()), 4) if shown else 0.0,
            "probability_drop": round(float(drop.mean()), 4) if shown else 0.0,
        }
    return {"seed": seed, "images": images, "min_pixels": world.VISIBLE_PIXELS,
            "correct_real_objects": int(correct.sum()), "parts": parts}


def format_table(report: dict[str, Any]) -> str:
    lines = [f"removing one part type from {report['correct_real_objects']} correctly classified real objects "
             f"(world seed {report['seed']}):", "  part     pictures  class changed  true-class probability drop"]
    for part, r in report["parts"].items():
        lines.append(f"  {part:8s} {r['images']:8d}  {r['class_changed']:12.1%}  {r['probability_drop']:10.3f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    a = jobs.parser("layerscope reliance", __doc__, seeds.RELIANCE, 1100,
                    "store the result in tiny.json's metrics").parse_args(argv)
    report = jobs.run(a, lambda model, meta: reliance(model, meta, a.seed, a.images))
    if a.write_metadata:
        meta = read_meta(a.weights_dir)
        meta["metrics"]["reliance"] = report
        write_meta(meta, Path(a.weights_dir))
    print(json.dumps(report) if a.json else format_table(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""``python -m bench.teach [--reps N]``: how long teaching 3 classes x 30 examples takes.

Two numbers per base model, each the median of ``--reps`` runs on this machine's CPU:

- *features*: the 90 examples through the base network (batched passes of 32), which the
  server does one upload at a time as the examples arrive;
- *train*: the head's training as the server runs it when Train is pressed (the
  ``Training`` in 20 ms slices, its standardization and held-out split included).

The pictures are parts-world scenes of three classes (``seeds.TEACH``). AlexNet's weights
are random (torchvision's builder, no download): its cost does not depend on what they are.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from PIL import Image
from torchvision.models import AlexNet_Weights

from models import world
from models.nets import build_alexnet
from models.teach.features import extract_all
from models.teach.head import Head
from models.teach.train import Training
from models.world import seeds
from models.zoo.registry import prepare_for_serving, tiny_entry

CLASSES = ("house", "boat", "car")
PER_CLASS = 30
SLICE_S = 0.02


def pictures() -> tuple[list[Image.Image], np.ndarray]:
    drawn = [
        world.generate(seeds.TEACH, i, 128, label=world.CLASSES.index(name))
        for name in CLASSES for i in range(PER_CLASS)
    ]
    return [Image.fromarray(s.image) for s in drawn], np.repeat(np.arange(len(CLASSES)), PER_CLASS)


def bases() -> dict[str, tuple[torch.nn.Module, object, str]]:
    tiny = tiny_entry()
    assert tiny.network is not None and tiny.cam_layer is not None
    alexnet = prepare_for_serving(build_alexnet())
    return {
        "tiny": (tiny.network, tiny.preprocess, tiny.cam_layer),
        "alexnet (random weights)": (alexnet, AlexNet_Weights.IMAGENET1K_V1.transforms(), "features.11"),
    }


def train_once(pooled: np.ndarray, labels: np.ndarray) -> float:
    units = pooled.shape[1]
    zeros = np.zeros(units, np.float32)
    template = Head(CLASSES, "bench", "features.11", zeros, zeros + 1, np.zeros((3, units), np.float32),
                    np.zeros(3, np.float32))
    start = time.perf_counter()
    training = Training(pooled, labels, template)
    while not training.advance(SLICE_S):
        pass
    training.outcome()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads (the server's default)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    images, labels = pictures()
    print(f"{len(CLASSES)} classes x {PER_CLASS} examples, {args.threads} torch threads, median of {args.reps}")
    print(f"{'base':<26}{'units':>6}{'features s':>12}{'train s':>10}{'held-out acc':>14}")
    for name, (network, preprocess, layer) in bases().items():
        tensors = [preprocess(image) for image in images]  # type: ignore[operator]
        extract_all(network, tensors[:4], layer)  # warm-up
        times, pooled = [], None
        for _ in range(args.reps):
            start = time.perf_counter()
            pooled = extract_all(network, tensors, layer).pooled
            times.append(time.perf_counter() - start)
        assert pooled is not None
        trains = [train_once(pooled, labels) for _ in range(args.reps)]
        template = Head(CLASSES, "bench", layer, pooled[0], pooled[0] + 1, np.zeros((3, pooled.shape[1]), np.float32),
                        np.zeros(3, np.float32))
        training = Training(pooled, labels, template)
        while not training.advance(1.0):
            pass
        held = training.outcome().heldout_accuracy
        print(f"{name:<26}{pooled.shape[1]:>6}{statistics.median(times):>12.3f}{statistics.median(trains):>10.3f}"
              f"{held:>14.3f}")


if __name__ == "__main__":
    main()

"""Try tiny-model recipes side by side on a CUDA GPU, to choose which one gets a full CPU run.

    python -m scripts.cuda_sweep train recipes.json OUT_DIR   # on a GPU machine
    python -m scripts.cuda_sweep score OUT_DIR/*.safetensors  # anywhere: the dissection's targets

``recipes.json`` maps a name to TrainConfig overrides, e.g. ``{"base": {}, "seed1": {"seed": 1},
"area": {"parts_area_power": 0.5}}``. The training pictures (the run's whole stream, 480,000
at the shipped config) are generated once, by every core, into a memory-mapped file that all
recipes read, and each recipe trains in its own process on the GPU with models.training's
network, schedule, readout, optimizer and training step (``Trainee.step``). The loop around
the step is its own (no DataLoader, snapshots, validation or plot), and a GPU's arithmetic
is not the CPU's, so these runs are not the shipped run: they rank recipes and show how
much a recipe varies from draw to draw (the model card quotes them as such). Weights are
written as soon as each run ends, so a machine lent for a few minutes returns what finished.

``score`` measures what the model card's targets measure: accuracy on 2,000 pictures of the
evaluation's world seed, and each concept's best single-unit IoU in conv2-conv5 (parts) and
conv5 (objects) on 500 pictures of the dissection's (models/world/seeds.py), with
models.analysis.dissect's own functions.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from models import world
from models.analysis.concepts import (
    CONV_LAYERS,
    TARGET_IOU,
    layer_activations,
    layer_alignment,
    matched_quantiles,
    world_concepts,
)
from models.analysis.dissect import dissect_activations
from models.nets import MiniAlexNet
from models.preprocess import MEAN, STD, normalize, normalize_samples
from models.training.config import TrainConfig
from models.training.data import parts_where, readout_alignment
from models.training.loop import Trainee, optimizer
from models.training.network import BNTrainNet, fold_batchnorm, he_init
from models.training.readouts import parts_loss_function, parts_task
from models.world import seeds

CHUNK = 2000  # pictures per generation job


def _files(data: Path) -> dict[str, Path]:
    return {k: data / f"{k}.npy" for k in ("images", "labels", "targets")}


def _generate(job: tuple[str, int, int, dict[str, Any]]) -> None:
    data, lo, hi, overrides = job
    torch.set_num_threads(1)
    cfg = replace(TrainConfig(), **overrides)
    align, side = readout_alignment(MiniAlexNet(cfg.net_config()), cfg.parts_layer, cfg.input_size)
    out = {k: np.load(p, mmap_mode="r+") for k, p in _files(Path(data)).items()}
    for i in range(lo, hi):
        s = world.generate(cfg.world_seed, i, cfg.input_size)
        out["images"][i] = s.image.transpose(2, 0, 1)
        out["labels"][i] = s.label
        out["targets"][i] = parts_where(s, align, side).numpy()
    for a in out.values():
        a.flush()


def generate(data: Path, cfg: TrainConfig, workers: int) -> None:
    """The run's whole picture stream (world seed, count and size from ``cfg``) on disk."""
    if (data / "done").exists():
        return
    data.mkdir(parents=True, exist_ok=True)
    n, size = cfg.steps * cfg.batch_size, cfg.input_size
    _, side = readout_alignment(MiniAlexNet(cfg.net_config()), cfg.parts_layer, size)
    shapes = {"images": ((n, 3, size, size), np.uint8), "labels": ((n,), np.int64),
              "targets": ((n, len(world.PARTS), side, side), np.float16)}
    for k, p in _files(data).items():
        np.lib.format.open_memmap(p, mode="w+", dtype=shapes[k][1], shape=shapes[k][0])
    recipe = {"world_seed": cfg.world_seed, "input_size": size, "parts_layer": cfg.parts_layer}
    jobs = [(str(data), lo, min(n, lo + CHUNK), recipe) for lo in range(0, n, CHUNK)]
    t = time.perf_counter()
    with get_context("fork").Pool(workers) as pool:
        for _ in pool.imap_unordered(_generate, jobs):
            pass
    (data / "done").write_text("ok")
    print(f"{n} pictures in {time.perf_counter() - t:.0f} s", flush=True)


def train_one(cfg: TrainConfig, data: Path, device: str) -> MiniAlexNet:
    """models.training.loop.train's loop (parts task "where" or none) on ``device``, reading the
    pictures from the shared stream instead of a DataLoader; the step itself is the trainer's."""
    torch.manual_seed(cfg.seed)
    net = MiniAlexNet(cfg.net_config())
    he_init(net)
    model = BNTrainNet(net, cfg.batchnorm).to(device)
    if cfg.parts_weight > 0 and cfg.parts_task != "where":
        raise ValueError("the sweep trains the 'where' parts task or none")
    readout, _ = parts_task(cfg, net)
    if readout is not None:
        readout = readout.to(device)
    class_loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    trainee = Trainee(cfg, model, readout, optimizer(cfg, model, readout), class_loss_fn,
                      parts_loss_function(cfg, device))
    arrays = {k: np.load(p, mmap_mode="r") for k, p in _files(data).items()}
    n = cfg.steps * cfg.batch_size
    order = torch.randperm(n, generator=torch.Generator().manual_seed(cfg.seed)).numpy()
    model.train()
    for step in range(1, cfg.steps + 1):
        idx = np.sort(order[(step - 1) * cfg.batch_size: step * cfg.batch_size])
        images = torch.from_numpy(arrays["images"][idx]).to(device)
        y = torch.from_numpy(arrays["labels"][idx]).to(device)
        t = torch.from_numpy(arrays["targets"][idx].astype(np.float32)).to(device)
        trainee.step(step, images, y, t)
    return fold_batchnorm(model.cpu())


def _train_group(names: list[str], recipes: dict[str, dict[str, Any]], data: str, out: str) -> None:
    torch.backends.cudnn.allow_tf32 = False  # keep fp32 arithmetic, as on the CPU
    torch.backends.cuda.matmul.allow_tf32 = False
    device = "cuda" if torch.cuda.is_available() else "cpu"
    for name in names:
        t = time.perf_counter()
        net = train_one(replace(TrainConfig(), **recipes[name]), Path(data), device)
        save_file({k: v.half().contiguous() for k, v in net.state_dict().items()}, Path(out) / f"{name}.safetensors",
                  metadata={"recipe": json.dumps(recipes[name])})
        print(f"{name}: trained in {time.perf_counter() - t:.0f} s", flush=True)


def train_all(recipes: dict[str, dict[str, Any]], data: Path, out: Path, processes: int) -> None:
    """Every recipe, ``processes`` at a time on the one GPU (small nets leave it mostly idle)."""
    out.mkdir(parents=True, exist_ok=True)
    shared = {k: v for k, v in TrainConfig().__dict__.items() if k in ("steps", "batch_size", "input_size",
                                                                        "world_seed", "parts_layer")}
    for name, r in recipes.items():
        if any(k in r and r[k] != v for k, v in shared.items()):
            raise ValueError(f"{name}: the shared pictures fix {sorted(shared)}")
    generate(data, TrainConfig(), os.cpu_count() or 1)
    names = list(recipes)
    ctx = get_context("spawn")  # CUDA cannot be used in a forked child
    procs = [ctx.Process(target=_train_group, args=(names[i::processes], recipes, str(data), str(out)))
             for i in range(min(processes, len(names)))]
    for p in procs:
        p.start()
    for p in procs:
        p.join()


@torch.no_grad()
def score(net: MiniAlexNet, eval_images: int = 2000, dissect_images: int = 500) -> dict[str, Any]:
    """Accuracy (the evaluation's world seed) and each concept's best single-unit IoU (the dissection's)."""
    net = net.eval()
    size = TrainConfig().input_size
    right = 0
    for start in range(0, eval_images, 200):
        x, y, _ = world.generate_batch(seeds.EVALUATION, start, min(200, eval_images - start), size)
        right += int((net(normalize(x, MEAN, STD)).argmax(1).numpy() == y).sum())
    samples = [world.generate(seeds.DISSECTION, i, size) for i in range(dissect_images)]
    concepts = world_concepts(samples, size).downsampled(size // 2)
    acts = layer_activations(net, normalize_samples(samples, {"mean": MEAN, "std": STD}), CONV_LAYERS)
    units = dissect_activations(acts, concepts, matched_quantiles(concepts.fractions()), layer_alignment(net, size))
    best = {t: dict(zip(concepts.names, np.array([r["per_concept"] for r in rows]).max(0).tolist(), strict=True))
            for t, rows in units.items()}
    parts = {p: max(best[t][p] for t in ("conv2", "conv3", "conv4", "conv5")) for p in world.PARTS}
    objects = {c: best["conv5"][c] for c in world.CLASSES if c != "scrambled"}
    return {"accuracy": right / eval_images, "parts_detected": sum(v >= TARGET_IOU for v in parts.values()),
            "objects_detected": sum(v >= TARGET_IOU for v in objects.values()),
            "part_best_iou": parts, "object_best_iou": objects}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="scripts.cuda_sweep", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train")
    t.add_argument("recipes", type=Path)
    t.add_argument("out", type=Path)
    t.add_argument("--data", type=Path, default=Path("/tmp/cuda-sweep-data"))
    t.add_argument("--processes", type=int, default=4)
    s = sub.add_parser("score")
    s.add_argument("weights", nargs="+", type=Path)
    a = p.parse_args(argv)
    if a.command == "train":
        train_all(json.loads(a.recipes.read_text()), a.data, a.out, a.processes)
        return 0
    for path in a.weights:
        net = MiniAlexNet(TrainConfig().net_config())
        net.load_state_dict({k: v.float() for k, v in load_file(path).items()})
        print(json.dumps({"name": path.stem, **score(net)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

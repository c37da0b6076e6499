"""The training loop: :func:`train` runs one recipe from its first weights to the shipped network.

Each step draws a fresh batch, sets the learning rate (linear warm-up, then cosine decay),
and minimizes the class loss plus the parts task's (:func:`step_losses`, the one definition
of a step, which scripts/cuda_sweep.py shares). Snapshots of the whole (folded) network are
kept before training and after 1 %, 10 % and 100 % of the steps, so the page can show the
first layer being learned; validation pictures of their own world seed are scored as it goes.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from models import world
from models.nets import MiniAlexNet
from models.plotting import has_matplotlib
from models.preprocess import MEAN, STD, normalize_chw
from models.training.config import TrainConfig
from models.training.data import PartTargets, training_loader
from models.training.finish import finish
from models.training.network import BNTrainNet, fold_batchnorm, he_init, predict
from models.training.plots import plot_history
from models.training.readouts import (
    Loss,
    PartsMapReadout,
    PartsReadout,
    PartsUnitReadout,
    Readout,
    parts_loss_function,
    parts_task,
    select_temperature,
)
from models.world import seeds
from models.zoo.tinyweights import save_model

CHECKPOINT_FRACTIONS = {"init": 0.0, "1pct": 0.01, "10pct": 0.10, "final": 1.0}
LOG_EVERY = 25  # steps per point of the training curve


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up then cosine decay to zero."""
    warm = max(1, int(cfg.warmup_fraction * cfg.steps))
    if step < warm:
        return cfg.lr * (step + 1) / warm
    t = (step - warm) / max(1, cfg.steps - warm)
    return cfg.lr * 0.5 * (1 + math.cos(math.pi * t))


def checkpoint_steps(steps: int) -> dict[str, int]:
    """Snapshot name -> the step after which it is taken."""
    # Non-initial snapshots come after at least one step, even in a very short run.
    return {name: max(1, round(f * steps)) if f > 0 else 0 for name, f in CHECKPOINT_FRACTIONS.items()}


def optimizer(cfg: TrainConfig, model: nn.Module, readout: nn.Module | None) -> torch.optim.SGD:
    """SGD with Nesterov momentum; weight decay on weight matrices and kernels only."""
    params = [*model.named_parameters(), *(readout.named_parameters() if readout is not None else [])]
    # The unit selection's logits are not weights to shrink: decay would pull them back to a mix.
    decay = [p for n, p in params if p.ndim > 1 and n != "select"]
    no_decay = [p for n, p in params if p.ndim <= 1 or n == "select"]
    return torch.optim.SGD([{"params": decay, "weight_decay": cfg.weight_decay},
                            {"params": no_decay, "weight_decay": 0.0}],
                           lr=cfg.lr, momentum=cfg.momentum, nesterov=True)


class StepLosses(NamedTuple):
    logits: torch.Tensor
    class_loss: torch.Tensor
    parts_loss: torch.Tensor | None
    loss: torch.Tensor  # what is minimized: the class loss plus the weighted parts terms


def step_losses(cfg: TrainConfig, model: BNTrainNet, readout: Readout | None, x: torch.Tensor,
                labels: torch.Tensor, targets: torch.Tensor, step: int,
                class_loss_fn: Loss, parts_loss_fn: Loss) -> StepLosses:
    """One training step's forward pass and losses on normalized pictures ``x`` (``step``
    counts from 1)."""
    if readout is None:
        logits = model(x)
        class_loss = class_loss_fn(logits, labels)
        return StepLosses(logits, class_loss, None, class_loss)
    logits, tapped = model.forward_tapped(x, cfg.parts_layer)
    if cfg.parts_dropout > 0:
        tapped = F.dropout(tapped, cfg.parts_dropout, training=True)
    if isinstance(readout, PartsUnitReadout):
        readout.temperature = select_temperature(step - 1, cfg)
    parts_loss = parts_loss_fn(readout(tapped), targets)
    class_loss = class_loss_fn(logits, labels)
    loss = class_loss + cfg.parts_weight * parts_loss
    if cfg.parts_l1 > 0 and isinstance(readout, PartsReadout | PartsMapReadout):
        loss = loss + cfg.parts_l1 * readout.linear.weight.abs().sum()
    return StepLosses(logits, class_loss, parts_loss, loss)


@dataclass
class Trainee:
    """The network in training, its parts readout (None without a parts task) and what trains them."""

    cfg: TrainConfig
    model: BNTrainNet
    readout: Readout | None
    opt: torch.optim.SGD
    class_loss_fn: Loss
    parts_loss_fn: Loss
    part_targets: PartTargets | None = None

    @classmethod
    def build(cls, cfg: TrainConfig) -> Trainee:
        """The recipe's network (He-initialized unless it trains with BatchNorm), readout and optimizer."""
        net = MiniAlexNet(cfg.net_config())
        if not cfg.batchnorm:
            he_init(net)
        model = BNTrainNet(net, cfg.batchnorm)
        readout, part_targets = parts_task(cfg, net)
        opt = optimizer(cfg, model, readout)
        class_loss_fn = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
        return cls(cfg, model, readout, opt, class_loss_fn, parts_loss_function(cfg), part_targets)

    def step(self, step: int, images: torch.Tensor, labels: torch.Tensor, targets: torch.Tensor,
             lr: float | None = None) -> StepLosses:
        """Step ``step`` (from 1) on uint8 N x 3 x H x W ``images``: learning rate (the recipe's
        schedule unless ``lr`` is given), losses, one update."""
        for g in self.opt.param_groups:
            g["lr"] = lr_at(step - 1, self.cfg) if lr is None else lr
        losses = step_losses(self.cfg, self.model, self.readout, normalize_chw(images, MEAN, STD), labels, targets,
                             step, self.class_loss_fn, self.parts_loss_fn)
        self.opt.zero_grad(set_to_none=True)
        losses.loss.backward()
        self.opt.step()
        return losses


class Snapshots:
    """The folded network saved at each of :data:`CHECKPOINT_FRACTIONS`; ``checkpoints`` lists them."""

    def __init__(self, cfg: TrainConfig, model: BNTrainNet, out: Path) -> None:
        self.cfg, self.model, self.out = cfg, model, out
        self.due = checkpoint_steps(cfg.steps)
        self.checkpoints: list[dict[str, Any]] = []

    def take(self, name: str, step: int) -> None:
        file = f"{self.cfg.name}-ckpt-{name}.safetensors"
        folded = fold_batchnorm(self.model)
        save_model(folded, self.out / file, torch.float16,
                   metadata={"net": json.dumps(folded.config.to_dict()), "step": str(step)})
        self.checkpoints.append({"name": name, "step": step, "fraction": round(step / self.cfg.steps, 4),
                                 "file": file})
        self.model.train()

    def after(self, step: int) -> None:
        """Take the snapshots due after training step ``step``."""
        for name, at in self.due.items():
            if at == step and name != "init":
                self.take(name, step)


class TrainingLog:
    """The curve: class loss, accuracy (and parts loss) averaged over every LOG_EVERY steps; validation accuracy."""

    def __init__(self, parts: bool) -> None:
        self.history: dict[str, list[float]] = {"step": [], "loss": [], "acc": [], "val_step": [], "val_acc": []}
        if parts:
            self.history["parts_loss"] = []
        self._reset()

    def _reset(self) -> None:
        self.loss, self.acc, self.parts, self.n = 0.0, 0.0, 0.0, 0

    def add(self, losses: StepLosses, labels: torch.Tensor) -> None:
        if losses.parts_loss is not None:
            self.parts += losses.parts_loss.item()
        self.loss += losses.class_loss.item()  # the class task's loss, comparable across recipes
        self.acc += (losses.logits.argmax(1) == labels).float().mean().item()
        self.n += 1

    def record(self, step: int) -> dict[str, str]:
        """Close the running means into the curve at ``step``; what the progress bar shows."""
        h = self.history
        h["step"].append(step)
        h["loss"].append(self.loss / self.n)
        h["acc"].append(self.acc / self.n)
        shown = {"loss": f"{self.loss / self.n:.3f}", "acc": f"{self.acc / self.n:.3f}"}
        if "parts_loss" in h:
            h["parts_loss"].append(self.parts / self.n)
            shown["parts"] = f"{self.parts / self.n:.3f}"
        self._reset()
        return shown

    def validated(self, step: int, acc: float) -> None:
        self.history["val_step"].append(step)
        self.history["val_acc"].append(acc)


def run_steps(trainee: Trainee, loader: DataLoader[Any], val_x: np.ndarray, val_y: np.ndarray,
              snapshots: Snapshots, progress: bool) -> tuple[dict[str, list[float]], float]:
    """Every step of the run; the training curve and the seconds it took."""
    cfg, model = trainee.cfg, trainee.model
    log = TrainingLog(parts=trainee.readout is not None)
    t0 = time.perf_counter()
    bar = tqdm(total=cfg.steps, disable=not progress, dynamic_ncols=True, mininterval=2.0)
    model.train()
    for step, (images, labels, targets) in enumerate(loader, start=1):
        log.add(trainee.step(step, images, labels, targets), labels)
        if step % LOG_EVERY == 0 or step == cfg.steps:
            bar.set_postfix(log.record(step))
        bar.update(1)
        snapshots.after(step)
        if step % cfg.val_every == 0 or step == cfg.steps:
            acc = float((predict(fold_batchnorm(model), val_x) == val_y).mean())
            log.validated(step, acc)
            bar.write(f"step {step}: val acc {acc:.4f} ({time.perf_counter() - t0:.0f} s)")
            model.train()
        if step >= cfg.steps:
            break
    bar.close()
    return log.history, time.perf_counter() - t0


def train(cfg: TrainConfig, progress: bool = True) -> dict[str, Any]:
    """Run one training; writes weights, snapshots, metadata and the curve into out_dir."""
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    trainee = Trainee.build(cfg)
    loader = training_loader(cfg, trainee.part_targets)
    val_x, val_y, _ = world.generate_batch(seeds.VALIDATION, 0, cfg.val_images, cfg.input_size)
    snapshots = Snapshots(cfg, trainee.model, out)
    trainee.model.eval()
    snapshots.take("init", 0)
    history, seconds = run_steps(trainee, loader, val_x, val_y, snapshots, progress)
    meta = finish(cfg, trainee.model, val_x, val_y, seconds, snapshots.checkpoints)
    (out / f"{cfg.name}-history.json").write_text(json.dumps(history) + "\n")
    if has_matplotlib():  # a test extra, not a runtime dependency: no plot without it
        plot_history(history, out / f"{cfg.name}-training.png")
    return meta

"""A training run a class watches: a fresh MiniAlexNet learning the parts world, a step at a time.

:class:`LiveRun` trains the shipped network (same widths, optimizer and class loss; no parts
task, so every step is the class task alone; BatchNorm while training, folded away in what is
shown: see :meth:`LiveConfig.recipe`) for a number of seconds rather than steps: the learning
rate warms up over the first steps and then follows a cosine over the *time* given, so a
30-second run and a 3-minute run both end cooled down. The caller drives it in slices
(:meth:`LiveRun.advance`) and asks for a :class:`Snapshot` whenever it wants to show
something; nothing is written anywhere.

With ``budget`` set, one run trains two networks from the same first weights, step for
step: one on a fresh batch of pictures every step, the other on ``budget`` pictures drawn
once and seen over and over. Their held-out accuracies, measured on the same pictures of a
seed neither trains on, are the data-budget lesson: the second one learns its few pictures
and stops getting better on new ones.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from models import world
from models.nets import MiniAlexNet
from models.training.config import TrainConfig
from models.training.loop import Trainee
from models.training.network import fold_batchnorm, predict
from models.world import seeds

SHORTEST_S = 5.0
LONGEST_S = 180.0
BUDGETS = (64, 2000)  # the fewest and most pictures a data-budget run may reuse


@dataclass(frozen=True)
class LiveConfig:
    """What one live run does."""

    seconds: float = 60.0
    budget: int | None = None  # None: fresh pictures only; N: also a twin that reuses N pictures
    batch_size: int = 32
    lr: float = 0.03
    warmup_steps: int = 20
    val_images: int = 160
    val_every_s: float = 2.0
    seed: int = 0

    def __post_init__(self) -> None:
        if not SHORTEST_S <= self.seconds <= LONGEST_S:
            raise ValueError(f"a live run lasts {SHORTEST_S:g} to {LONGEST_S:g} seconds, not {self.seconds:g}")
        if self.budget is not None and not BUDGETS[0] <= self.budget <= BUDGETS[1]:
            raise ValueError(f"a data budget is {BUDGETS[0]} to {BUDGETS[1]} pictures, not {self.budget}")

    def recipe(self) -> TrainConfig:
        """The shipped recipe with this run's batch and learning rate, no parts task, and
        BatchNorm while training instead of dropout: in the few hundred steps a class watches,
        that learns several times faster (held-out accuracy after 300 steps of 32 pictures:
        46 % against 15 % with the shipped recipe's He initialization and dropout)."""
        return replace(TrainConfig(), seed=self.seed, batch_size=self.batch_size, lr=self.lr,
                       parts_task="", parts_weight=0.0, batchnorm=True, dropout=0.0)


Pictures = Callable[[int], tuple[torch.Tensor, torch.Tensor]]  # step -> (uint8 N x 3 x H x W, labels)


def fresh_pictures(size: int, batch: int) -> Pictures:
    """A new batch of the live training seed at every step: no picture is ever seen twice."""
    def draw(step: int) -> tuple[torch.Tensor, torch.Tensor]:
        images, labels, _ = world.generate_batch(seeds.LIVE_TRAINING, (step - 1) * batch, batch, size)
        return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(labels)
    return draw


def reused_pictures(size: int, batch: int, budget: int, seed: int) -> Pictures:
    """Batches drawn at random from the first ``budget`` pictures of the same seed, drawn once."""
    images, labels, _ = world.generate_batch(seeds.LIVE_TRAINING, 0, budget, size)
    pool = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
    pool_labels = torch.from_numpy(labels)
    order = torch.Generator().manual_seed(seed)

    def draw(_step: int) -> tuple[torch.Tensor, torch.Tensor]:
        index = torch.randint(budget, (batch,), generator=order)
        return pool[index], pool_labels[index]
    return draw


@dataclass
class Learner:
    """One network in the run, what it learns from, and its curve."""

    name: str
    trainee: Trainee
    pictures: Pictures
    pictures_seen: int = 0
    # Running means of the class loss and batch accuracy since the last snapshot.
    _loss: float = 0.0
    _correct: float = 0.0
    _steps: int = 0
    curve: dict[str, list[float]] = field(
        default_factory=lambda: {"step": [], "loss": [], "accuracy": [], "val_step": [], "val_accuracy": []})

    @property
    def network(self) -> MiniAlexNet:
        """The network as it computes now in evaluation mode: BatchNorm folded into a copy."""
        return fold_batchnorm(self.trainee.model)

    def step(self, step: int, lr: float) -> None:
        images, labels = self.pictures(step)
        losses = self.trainee.step(step, images, labels, torch.empty(0), lr=lr)
        self.pictures_seen += len(labels)
        self._loss += losses.class_loss.item()
        self._correct += (losses.logits.argmax(1) == labels).float().mean().item()
        self._steps += 1

    def close(self, step: int) -> None:
        """End the running means at ``step`` into the curve (nothing when no step ran since)."""
        if self._steps:
            self.curve["step"].append(step)
            self.curve["loss"].append(self._loss / self._steps)
            self.curve["accuracy"].append(self._correct / self._steps)
        self._loss, self._correct, self._steps = 0.0, 0.0, 0

    def validate(self, step: int, images: np.ndarray, labels: np.ndarray) -> None:
        accuracy = float((predict(self.network, images) == labels).mean())
        self.curve["val_step"].append(step)
        self.curve["val_accuracy"].append(accuracy)


@dataclass(frozen=True)
class Snapshot:
    """What the run has done so far; ``network`` is a copy of the fresh-picture learner's network."""

    step: int
    elapsed_s: float
    seconds: float
    done: bool
    learners: dict[str, dict[str, Any]]  # name -> pictures seen, pool, curves
    network: MiniAlexNet


class LiveRun:
    """Train for ``config.seconds`` of the clock; :meth:`advance` does the steps a slice allows."""

    def __init__(self, config: LiveConfig, clock: Callable[[], float] = time.perf_counter) -> None:
        self.config = config
        self.clock = clock
        recipe = config.recipe()
        size = recipe.input_size
        torch.manual_seed(config.seed)
        first = Trainee.build(recipe)
        self.learners = [Learner("fresh", first, fresh_pictures(size, config.batch_size))]
        if config.budget is not None:
            torch.manual_seed(config.seed)  # the same first weights: the twins differ only in their pictures
            twin = Trainee.build(recipe)
            self.learners.append(Learner("budget", twin, reused_pictures(size, config.batch_size, config.budget,
                                                                          config.seed)))
        self.val_images, self.val_labels, _ = world.generate_batch(seeds.LIVE_VALIDATION, 0, config.val_images, size)
        for learner in self.learners:
            learner.trainee.model.train()
        self.step = 0
        self.started = clock()
        self._validated_at = -math.inf

    @property
    def elapsed_s(self) -> float:
        return self.clock() - self.started

    @property
    def done(self) -> bool:
        return self.elapsed_s >= self.config.seconds

    def lr(self) -> float:
        """Linear warm-up over the first steps, then a cosine over the run's time to zero."""
        cfg = self.config
        if self.step < cfg.warmup_steps:
            return cfg.lr * (self.step + 1) / cfg.warmup_steps
        share = min(1.0, self.elapsed_s / cfg.seconds)
        return cfg.lr * 0.5 * (1 + math.cos(math.pi * share))

    def advance(self, budget_s: float) -> bool:
        """Steps (at least one, each learner once a step) until ``budget_s`` has passed; True once done."""
        deadline = self.clock() + budget_s
        while not self.done:
            lr = self.lr()
            self.step += 1
            for learner in self.learners:
                learner.step(self.step, lr)
            if self.clock() >= deadline:
                break
        if self.done or self.elapsed_s - self._validated_at >= self.config.val_every_s:
            self._validated_at = self.elapsed_s
            for learner in self.learners:
                learner.validate(self.step, self.val_images, self.val_labels)
        return self.done

    def snapshot(self) -> Snapshot:
        """The curves so far (the running means close here) and the fresh learner's network, folded."""
        learners: dict[str, dict[str, Any]] = {}
        for learner in self.learners:
            learner.close(self.step)
            pool = None if learner.name == "fresh" else self.config.budget
            learners[learner.name] = {"pictures_seen": learner.pictures_seen, "pool": pool,
                                      **{key: list(values) for key, values in learner.curve.items()}}
        return Snapshot(self.step, round(self.elapsed_s, 3), self.config.seconds, self.done, learners,
                        self.learners[0].network)

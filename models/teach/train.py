"""Training a head on examples' features: standardized, full batch, seeded, in slices.

The examples' pooled features (models/teach/features.py) are split per class into a
training and a held-out part when every class has at least ``min_holdout`` examples (a
``holdout`` share of each, at least one); otherwise all train and there is no held-out
accuracy. The standardization is fitted on the training part only. The weights start at
zero and Adam takes full-batch steps of softmax cross-entropy with a little weight decay,
so the same examples always give the same head (the split is drawn from ``seed``).

``Training.advance`` runs steps for a time budget, so the web layer can run it in short
slices on its one inference thread; every ``report_every`` steps (and at the last one) it
hands a ``Progress`` to the callback: step, loss, training and held-out accuracy.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from models.teach.head import Head, standardization


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 200
    lr: float = 0.01
    weight_decay: float = 1e-3
    holdout: float = 0.2  # share of each class held out
    min_holdout: int = 5  # examples every class needs before any is held out
    report_every: int = 10
    seed: int = 0


@dataclass(frozen=True)
class Progress:
    step: int
    loss: float
    train_accuracy: float
    heldout_accuracy: float | None


@dataclass(frozen=True)
class Outcome:
    """The trained head and how it did."""

    head: Head
    steps: int
    loss: float
    train_accuracy: float
    heldout_accuracy: float | None
    train_examples: int
    heldout_examples: int
    seconds: float


def split(labels: np.ndarray, classes: int, config: TrainConfig) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the training and held-out examples (held-out empty when too few)."""
    rng = np.random.default_rng(config.seed)
    counts = np.bincount(labels, minlength=classes)
    if counts.min() < config.min_holdout:
        return np.arange(len(labels)), np.arange(0)
    held: list[int] = []
    for c in range(classes):
        members = rng.permutation(np.flatnonzero(labels == c))
        held += members[: max(1, int(len(members) * config.holdout))].tolist()
    heldout = np.sort(np.array(held, dtype=np.int64))
    return np.setdiff1d(np.arange(len(labels)), heldout), heldout


class Training:
    """One head being trained; ``advance`` until it says it is done, then ``outcome``."""

    def __init__(
        self,
        pooled: np.ndarray,
        labels: np.ndarray,
        head: Head,
        config: TrainConfig = TrainConfig(),
        on_progress: Callable[[Progress], None] | None = None,
    ) -> None:
        """``head`` names the classes, base and layer; its numbers are replaced by training."""
        self.config, self.on_progress, self.template = config, on_progress, head
        train, held = split(labels, len(head.classes), config)
        self.mean, self.std = standardization(pooled[train])
        standardized = (pooled - self.mean) / self.std
        self.x, self.y = torch.from_numpy(standardized[train]).float(), torch.from_numpy(labels[train]).long()
        self.hx, self.hy = torch.from_numpy(standardized[held]).float(), torch.from_numpy(labels[held]).long()
        self.weight = torch.zeros(len(head.classes), pooled.shape[1], requires_grad=True)
        self.bias = torch.zeros(len(head.classes), requires_grad=True)
        self.optimizer = torch.optim.Adam([self.weight, self.bias], lr=config.lr, weight_decay=config.weight_decay)
        self.step = 0
        self.last: Progress | None = None
        self.seconds = 0.0

    @property
    def finished(self) -> bool:
        return self.step >= self.config.steps

    def advance(self, budget_s: float) -> bool:
        """Steps until ``budget_s`` has passed (at least one); True once training is done."""
        start = time.perf_counter()
        with torch.enable_grad():
            while not self.finished:
                self._one_step()
                if time.perf_counter() - start >= budget_s:
                    break
        self.seconds += time.perf_counter() - start
        return self.finished

    def _one_step(self) -> None:
        self.optimizer.zero_grad()
        F.cross_entropy(self.x @ self.weight.T + self.bias, self.y).backward()
        self.optimizer.step()
        self.step += 1
        if self.step % self.config.report_every == 0 or self.finished:
            self._report()

    def _report(self) -> None:
        """Loss and accuracies of the weights as they are after this step: those of the head."""
        with torch.no_grad():
            logits = self.x @ self.weight.T + self.bias
            loss = float(F.cross_entropy(logits, self.y))
            train_accuracy = float((logits.argmax(1) == self.y).float().mean())
            heldout = None
            if len(self.hy):
                heldout = float(((self.hx @ self.weight.T + self.bias).argmax(1) == self.hy).float().mean())
        self.last = Progress(self.step, loss, train_accuracy, heldout)
        if self.on_progress is not None:
            self.on_progress(self.last)

    def outcome(self) -> Outcome:
        """The head as it stands and its last report."""
        assert self.last is not None, "advance first"
        t = self.template
        head = Head(
            t.classes, t.base, t.layer, self.mean, self.std,
            self.weight.detach().numpy().copy(), self.bias.detach().numpy().copy(),
        )
        last = self.last
        return Outcome(
            head, self.step, last.loss, last.train_accuracy, last.heldout_accuracy,
            len(self.y), len(self.hy), self.seconds,
        )

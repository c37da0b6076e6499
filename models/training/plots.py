"""A run's training curve as a picture: loss and accuracy per step (written when matplotlib is installed)."""

from __future__ import annotations

from pathlib import Path

from models.plotting import pyplot, save


def plot_history(history: dict[str, list[float]], path: Path) -> None:
    """Training loss (class and parts task) and training and validation accuracy against the step."""
    fig, ax = pyplot().subplots(1, 2, figsize=(9, 3.2))
    ax[0].plot(history["step"], history["loss"], label="class")
    if history.get("parts_loss"):  # the second task's loss, when the recipe has one
        ax[0].plot(history["step"], history["parts_loss"], label="parts task")
        ax[0].legend(loc="upper right")
    ax[0].set(xlabel="step", ylabel="training loss (mean of 25 steps)", yscale="log")
    ax[1].plot(history["step"], history["acc"], label="training batches")
    ax[1].plot(history["val_step"], history["val_acc"], "o-", label="validation (fresh seed)")
    ax[1].set(xlabel="step", ylabel="accuracy", ylim=(0, 1))
    ax[1].legend(loc="lower right")
    save(fig, path)

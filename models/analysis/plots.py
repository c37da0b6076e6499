"""The dissection's pictures: unit categories and mean IoU per layer, and conv1 at every training snapshot."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from models import world
from models.analysis.concepts import CONV_LAYERS, TARGET_IOU
from models.plotting import pyplot, save
from models.zoo.tinyweights import load_checkpoint


def _category_bars(ax: Any, report: dict[str, Any], titles: list[str]) -> None:
    xs = np.arange(len(titles))
    for off, label, alpha in ((-0.2, "trained", 1.0), (0.2, "untrained", 0.45)):
        bottom = np.zeros(len(titles))
        units = report[label]["units"]
        for cat, color in (("edge/colour", "#4c72b0"), ("part", "#dd8452"), ("object", "#55a868")):
            # Categories are exclusive (detector first), so the stacked bars add up.
            vals = np.array([sum(r["category"] == cat for r in units[t]) / len(units[t]) for t in titles])
            ax.bar(xs + off, vals, 0.38, bottom=bottom, color=color, alpha=alpha, label=f"{cat} ({label})")
            bottom += vals
    ax.set_xticks(xs, titles)
    ax.set(ylabel="share of units", title="unit categories (left trained, right untrained)")
    ax.legend(fontsize=6, loc="upper left")


def _iou_lines(ax: Any, report: dict[str, Any], titles: list[str], kind: str, names: Sequence[str]) -> None:
    def mean_of(per_layer: dict[str, dict[str, float]]) -> list[float]:
        return [float(np.mean([per_layer[t][c] for c in names])) for t in titles]

    for label, style in (("trained", "-o"), ("untrained", "--x")):
        layers = report[label]["layers"]
        ax.plot(titles, mean_of({t: layers[t]["best_iou"] for t in titles}), style, label=f"best unit, {label}")
        if "probe_iou" in layers[titles[0]]:
            ax.plot(titles, mean_of({t: layers[t]["probe_iou"] for t in titles}), style, alpha=0.5,
                    label=f"best combination of units, {label}")
    if "ceiling_iou" in report:
        ax.plot(titles, mean_of(report["ceiling_iou"]), ":", color="grey", label="ideal unit (the layer's resolution)")
    ax.axhline(TARGET_IOU, color="grey", lw=0.8, ls=":")
    ax.set(title=f"{kind} concepts: mean IoU", ylim=(0, 1.0))
    ax.legend(fontsize=6)


def plot(report: dict[str, Any], path: Path) -> None:
    """Unit categories per layer, then mean best IoU of the part and the object concepts."""
    titles = list(CONV_LAYERS)
    fig, ax = pyplot().subplots(1, 3, figsize=(13, 3.6))
    _category_bars(ax[0], report, titles)
    objects = [c for c in world.CLASSES if c != "scrambled"]
    for k, (kind, names) in enumerate((("part", world.PARTS), ("object", objects))):
        _iou_lines(ax[k + 1], report, titles, kind, names)
    save(fig, path)


def filter_grid(weight: np.ndarray) -> np.ndarray:
    """N x 3 x k x k filters tiled on a white square grid, each scaled to its own range."""
    n, k = weight.shape[0], weight.shape[-1]
    cols = math.ceil(math.sqrt(n))
    grid = np.ones((cols * (k + 1), cols * (k + 1), 3))
    for i in range(n):
        f = weight[i].transpose(1, 2, 0)
        f = (f - f.min()) / max(float(np.ptp(f)), 1e-8)
        r, q = divmod(i, cols)
        grid[r * (k + 1):r * (k + 1) + k, q * (k + 1):q * (k + 1) + k] = f
    return grid


def plot_conv1_snapshots(weights_dir: Path, meta: dict[str, Any], path: Path) -> None:
    """conv1 filters at every training snapshot, each filter scaled to its own range."""
    ckpts = meta["checkpoints"]
    fig, axes = pyplot().subplots(1, len(ckpts), figsize=(3.2 * len(ckpts), 3.4))
    for ax, c in zip(np.atleast_1d(axes), ckpts, strict=True):
        conv1 = load_checkpoint(weights_dir / c["file"]).features[0]
        assert isinstance(conv1, nn.Conv2d)
        ax.imshow(filter_grid(conv1.weight.detach().numpy()), interpolation="nearest")
        ax.set_title(f"{c['name']} (step {c['step']})")
        ax.axis("off")
    save(fig, path)

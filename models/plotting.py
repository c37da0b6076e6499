"""Matplotlib for the jobs' plots: a test extra, not a runtime dependency, so every plot is optional."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any


def has_matplotlib() -> bool:
    """Whether matplotlib is installed (the jobs write their plots only then)."""
    return importlib.util.find_spec("matplotlib") is not None


def pyplot() -> ModuleType:
    """matplotlib.pyplot on the file-only Agg backend (no display is needed or used)."""
    import matplotlib  # optional: imported only when a plot is drawn

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig: Any, path: Path) -> None:
    """Lay ``fig`` out, write it to ``path`` at 100 dpi and free it."""
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    pyplot().close(fig)

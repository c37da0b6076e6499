"""The training runs tried before the shipped one (``runs.toml``), as rows of the card's tables."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from models import world

RUNS_FILE = Path(__file__).with_name("runs.toml")
RUNS: dict[str, Any] = tomllib.loads(RUNS_FILE.read_text())

OBJECTS = len(world.CLASSES) - 1  # every class but scrambled is an object


def counted(n: int | str, of: int) -> str:
    """A count of concepts as the tables give it ('5 of 12'); a note stays as it is."""
    return f"{n} of {of}" if isinstance(n, int) else n


def run_row(run: dict[str, Any]) -> tuple[str, ...]:
    """run, recipe, accuracy, minutes, parts by a unit, objects by a unit, parts by a combination."""
    return (run["name"], run["recipe"], f"{run['accuracy']:.2f} %", str(run["minutes"]),
            counted(run["parts"], len(world.PARTS)), counted(run["objects"], OBJECTS),
            counted(run["combinations"], len(world.PARTS)))


def draw_row(draw: dict[str, Any]) -> tuple[str, ...]:
    """recipe, flags, accuracy, parts by a unit, objects by a unit, concepts below the target."""
    return (draw["name"], f"`{draw['flags']}`" if draw["flags"] else "(none)", f"{draw['accuracy']:.2f} %",
            counted(draw["parts"], len(world.PARTS)), counted(draw["objects"], OBJECTS), draw["below"])


RUNS_TRIED = tuple(run_row(r) for r in RUNS["run"])
# The shipped recipe trained on class labels alone: a row of the table once the shipped recipe has a parts task.
CLASS_LABELS_ALONE = run_row(RUNS["labels_alone"])
CLASS_LABELS_ALONE_RHO: float = RUNS["labels_alone"]["rank_correlation"]
GPU = RUNS["gpu"]
GPU_DRAWS = tuple(draw_row(d) for d in GPU["draw"])
MEASURED = RUNS["measured"]


def tried(taught: bool) -> list[dict[str, Any]]:
    """The runs the card lists, in order: *class labels alone* joins them when the shipped model was taught."""
    return [*RUNS["run"], *([RUNS["labels_alone"]] if taught else [])]

"""The shipped tiny model's metadata (tiny.json) as typed, frozen values.

The training and measuring jobs write tiny.json as a plain dict (``tinyweights.read_meta``
and ``write_meta``); the registry and the web layer read it once, when the weights load, as
a :class:`ModelMeta`, so a missing or misspelt key fails there and nowhere later.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from models import world
from models.nets import NetConfig

# What a tiny.json written before a field existed means by its absence.
DEFAULT_TRAINED_ON = "the LayerScope parts world"
DEFAULT_PARTS_TASK = "names"  # the first runs with a parts task had only the naming one
DEFAULT_PARTS_LAYER = 4


@dataclass(frozen=True)
class Checkpoint:
    """One snapshot the training job kept: its name, step, share of the run and file."""

    name: str
    step: int
    fraction: float
    file: str  # next to the final weights; never shown by the API

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> Checkpoint:
        # The numbers as written (an int stays an int): the API shows them unchanged.
        return cls(str(record["name"]), record["step"], record["fraction"], str(record["file"]))

    def public(self) -> dict[str, Any]:
        """What the API lists: everything but the file name."""
        return {"name": self.name, "step": self.step, "fraction": self.fraction}


@dataclass(frozen=True)
class TaughtParts:
    """The second training task about the parts a recipe had besides the classes.

    ``task`` is "where" or "names", ``layer`` the conv (1-5) it read; ``units`` pairs each
    part type with the unit given to it, when each part type was read from one unit (the
    assigned readout), else it is empty.
    """

    task: str
    layer: int
    units: tuple[tuple[str, int], ...] = ()

    @classmethod
    def from_train_config(cls, train_config: Mapping[str, Any]) -> TaughtParts | None:
        """The recipe's parts task, or None when it learnt from class labels alone."""
        if not train_config.get("parts_weight"):
            return None
        task = train_config.get("parts_task") or DEFAULT_PARTS_TASK
        layer = int(train_config.get("parts_layer", DEFAULT_PARTS_LAYER))
        # Part type k was read from unit k, in the world's order (models/training).
        assigned = train_config.get("parts_readout") == "assigned"
        return cls(task, layer, tuple((p, k) for k, p in enumerate(world.PARTS)) if assigned else ())

    def to_dict(self) -> dict[str, Any]:
        """The JSON the API lists ({"task", "layer"} and "units" when there are any)."""
        taught: dict[str, Any] = {"task": self.task, "layer": self.layer}
        if self.units:
            taught["units"] = dict(self.units)
        return taught

    def units_on(self, layer_title: str) -> dict[int, str]:
        """channel -> part type for the layer titled ``layer_title`` ("conv4", "conv4 (before
        ReLU)"): the taught units where they are that conv's, else none."""
        if not self.units or layer_title.split(" ")[0] != f"conv{self.layer}":
            return {}
        return {unit: part for part, unit in self.units}


@dataclass(frozen=True)
class ModelMeta:
    """tiny.json, typed: what the weights are and what was measured on them."""

    classes: tuple[str, ...]
    input_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    net: NetConfig
    sha256: str
    trained_on: str
    # The measuring jobs' numbers as they wrote them; the API shows them as they are.
    metrics: Mapping[str, Any]
    checkpoints: tuple[Checkpoint, ...]
    taught_parts: TaughtParts | None
    dtype: str | None = None
    world_seed: int | None = None

    @classmethod
    def from_dict(cls, meta: Mapping[str, Any]) -> ModelMeta:
        """Build from tiny.json's dict; only the keys a model cannot be served without are required."""
        train_config: Mapping[str, Any] = meta.get("train_config", {})
        mean, std = meta["mean"], meta["std"]
        return cls(
            classes=tuple(str(c) for c in meta["classes"]),
            input_size=int(meta["input_size"]),
            mean=(float(mean[0]), float(mean[1]), float(mean[2])),
            std=(float(std[0]), float(std[1]), float(std[2])),
            net=NetConfig.from_dict(meta["net"]),
            sha256=str(meta["sha256"]),
            trained_on=str(meta.get("trained_on", DEFAULT_TRAINED_ON)),
            metrics=MappingProxyType(dict(meta.get("metrics", {}))),
            checkpoints=tuple(Checkpoint.from_dict(c) for c in meta.get("checkpoints", [])),
            taught_parts=TaughtParts.from_train_config(train_config),
            dtype=meta.get("dtype"),
            world_seed=train_config.get("world_seed"),
        )

    @property
    def accuracy(self) -> float | None:
        """Accuracy on fresh parts-world pictures (a fraction), when it was measured."""
        value = self.metrics.get("accuracy")
        return None if value is None else float(value)

"""What a unit is: a layer's output shape, the conv a ReLU belongs to, unit labels.

A unit is one channel of a layer's output (one neuron for a fully connected layer).
Shapes are measured once per network by a forward pass on a blank input, so any layer
name ``named_modules()`` knows works without a table of widths.
"""

from __future__ import annotations

import json
import weakref
from pathlib import Path
from typing import Any

import torch
from torch import nn

from models.capture import capture

Shapes = dict[str, tuple[int, ...]]
_SHAPES: weakref.WeakKeyDictionary[nn.Module, dict[int, Shapes]] = weakref.WeakKeyDictionary()


def layer_shapes(network: nn.Module, input_size: int) -> Shapes:
    """Output shape (without the batch axis) of every named module, for one input size."""
    per_size = _SHAPES.setdefault(network, {})
    cached = per_size.get(input_size)
    if cached is None:
        names = [name for name, _ in network.named_modules() if name]
        with torch.inference_mode(), capture(network, names) as outputs:
            network(torch.zeros(1, 3, input_size, input_size))
        cached = {name: tuple(outputs[name].shape[1:]) for name in names}
        per_size[input_size] = cached
    return cached


def cached_shapes(network: nn.Module, input_size: int) -> Shapes | None:
    """The shapes if already measured (no torch work), else None."""
    return _SHAPES.get(network, {}).get(input_size)


def unit_count(network: nn.Module, input_size: int, layer: str) -> int:
    """How many units (channels, or neurons of a vector output) ``layer`` has."""
    return layer_shapes(network, input_size)[layer][0]


def pre_activation(network: nn.Module, layer: str) -> str:
    """The module to optimize for a unit of ``layer``: the conv/linear before a ReLU.

    Maximizing a ReLU's output gives no gradient while the unit is off; its input (the
    conv's output) has the same maximizer where it is positive and a gradient everywhere.
    """
    modules = dict(network.named_modules())
    if isinstance(modules.get(layer), nn.ReLU) and "." in layer:
        parent, index = layer.rsplit(".", 1)
        before = f"{parent}.{int(index) - 1}"
        if isinstance(modules.get(before), nn.Conv2d | nn.Linear):
            return before
    return layer


def read_dissection(path: Path) -> dict[str, list[dict[str, Any]]]:
    """Unit labels from a dissection file, as layer name -> one dict per unit.

    Accepted shapes (the dissect job owns the file; this reader only normalizes it):
    ``{"layers": {layer: {"units": [...]}}}``, ``{"layers": {layer: [...]}}``,
    ``{"layers": [{"name"|"layer": ..., "units": [...]}]}`` or ``{layer: [...]}``. Each unit
    dict needs ``unit``/``channel`` (else its position) and ``label``/``concept`` and ``iou``.
    """
    if not path.is_file():
        return {}
    raw = json.loads(path.read_text())
    layers = raw.get("layers", raw) if isinstance(raw, dict) else raw
    if isinstance(layers, list):
        layers = {item.get("name") or item.get("layer"): item for item in layers if isinstance(item, dict)}
    result: dict[str, list[dict[str, Any]]] = {}
    for name, value in layers.items():
        units = value.get("units") if isinstance(value, dict) else value
        if not isinstance(name, str) or not isinstance(units, list):
            continue
        result[name] = [_unit_record(i, u) for i, u in enumerate(units) if isinstance(u, dict)]
    return result


def _unit_record(position: int, unit: dict[str, Any]) -> dict[str, Any]:
    channel = unit.get("unit", unit.get("channel", position))
    label = unit.get("label", unit.get("concept"))
    iou = unit.get("iou")
    record = {k: v for k, v in unit.items() if k not in ("unit", "channel", "concept")}
    record.update({"channel": int(channel), "label": label, "iou": None if iou is None else float(iou)})
    return record

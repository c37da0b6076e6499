"""What the API says about a model's units: dissection labels, taught part types, shipped sprites.

A unit's label comes from the dissection file the model ships (``ModelEntry.dissection_file``);
only the part and object categories name a detector. Units that training gave a part type to
find say which (``ModelEntry.taught_parts``), so the page never reads a taught detector as a
found one.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import numpy as np

from app.encode import data_url, png_bytes
from models.units import read_dissection
from models.zoo import assets
from models.zoo.registry import ModelEntry

NAMED_CATEGORIES = ("part", "object")  # the dissect job's categories that name a detector
SPRITE_KINDS = ("featvis", "patches")
# Fields of a dissection record the API passes on as they are, when present.
RECORD_FIELDS = ("kind", "category", "quantile", "osi", "preferred_deg", "colour")

Record = dict[str, Any]
_DISSECTIONS: dict[Path, tuple[float, dict[str, list[Record]]]] = {}


def dissection(entry: ModelEntry) -> dict[str, list[Record]]:
    """layer -> one record per unit, from the model's dissection file ({} without one)."""
    path = entry.dissection_file
    if path is None:
        return {}
    # Re-read when the file changes (the dissect job may rewrite it while we serve).
    stamp = path.stat().st_mtime if path.is_file() else -1.0
    cached = _DISSECTIONS.get(path)
    if cached is None or cached[0] != stamp:
        cached = (stamp, read_dissection(path))
        _DISSECTIONS[path] = cached
    return cached[1]


def layer_records(entry: ModelEntry, layer: str) -> dict[int, Record]:
    """channel -> dissection record, for the units of ``layer`` that have one."""
    return {r["channel"]: r for r in dissection(entry).get(layer, [])}


def unit_label(record: Record | None) -> dict[str, Any]:
    """The label fields of a unit's JSON (all None without a record)."""
    if record is None:
        return {"label": None, "iou": None, "named": False, "description": None}
    named = record.get("category") in NAMED_CATEGORIES
    return {
        "label": record.get("label"),
        "iou": record.get("iou"),
        "named": named,
        "description": describe(record, named),
        **{k: record[k] for k in RECORD_FIELDS if k in record},
    }


def describe(record: Record, named: bool) -> str | None:
    """The words the page can show: "wheel detector", "edge/colour unit", or None."""
    if named and record.get("label"):
        return f"{record['label']} detector"
    if record.get("category") == "edge/colour":
        return "edge/colour unit"
    return None


def taught_units(entry: ModelEntry, layer: str) -> dict[int, str]:
    """channel -> part type, for the units of ``layer`` that training gave a part type to
    find (the recipe's assigned readout); empty for every other layer and model."""
    taught = entry.taught_parts
    return {} if taught is None else taught.units_on(entry.layers[layer].title)


def listing(
    entry: ModelEntry, layer: str, count: int, named: bool, concept: str | None, sprites: bool
) -> dict[str, Any]:
    """Every unit of ``layer`` (``count`` of them) with its label, filtered as asked."""
    records = layer_records(entry, layer)
    taught = taught_units(entry, layer)
    units = []
    for channel in range(count):
        info = {"channel": channel, **unit_label(records.get(channel)), "taught": taught.get(channel)}
        if (named and not info["named"]) or (concept is not None and info["label"] != concept):
            continue
        units.append(info)
    body: dict[str, Any] = {
        "model": entry.id,
        "layer": layer,
        "title": entry.layers[layer].title,
        "unit_count": count,
        "dissected": bool(records),
        "units": units,
    }
    if sprites:
        body["sprites"] = {kind: sprite_json(entry, kind, layer) for kind in SPRITE_KINDS}
    return body


def sprite_json(entry: ModelEntry, kind: str, layer: str) -> dict[str, Any] | None:
    # The file as shipped (the patches are a JPEG): no decoding and re-encoding per request.
    found = assets.sprite_bytes(entry.assets_source, kind, layer)
    if found is None:
        return None
    return {
        "url": f"data:{found.media_type};base64," + base64.b64encode(found.raw).decode("ascii"),
        "columns": found.columns,
        "tile": list(found.tile),
        "units": found.units,
    }


def unit_patches(entry: ModelEntry, layer: str, channel: int) -> dict[str, Any] | None:
    """The unit's shipped strip of top patches and their activations (None when none ship)."""
    strip = assets.unit_patches(entry.assets_source, layer, channel)
    if strip is None:
        return None
    pixels, values = strip
    return {
        "png": data_url(png_bytes(np.ascontiguousarray(pixels))),
        "count": len(values),
        "tile": [int(pixels.shape[0]), int(pixels.shape[0])],
        "activations": values,
    }


def unit_detail(entry: ModelEntry, layer: str, channel: int, featvis: tuple[bytes, str]) -> dict[str, Any]:
    """One unit: where it sits, its label, its feature visualization (PNG, source) and patches."""
    png, source = featvis
    return {
        "model": entry.id,
        "layer": layer,
        "title": entry.layers[layer].title,
        "channel": channel,
        "receptive_field": entry.layers[layer].receptive_field,
        **unit_label(layer_records(entry, layer).get(channel)),
        "taught": taught_units(entry, layer).get(channel),
        "featvis": {"png": data_url(png), "source": source},
        "patches": unit_patches(entry, layer, channel),
    }

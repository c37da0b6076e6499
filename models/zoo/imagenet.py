"""Entries for torchvision's ImageNet classifiers by name, from their files on this machine.

A network is built by models/zoo/torchvision_zoo.py exactly as torchvision builds it for its
DEFAULT weights; its preprocessing is ``weights.transforms()``, its classes
``weights.meta["categories"]``, and its layers, default view, Grad-CAM layer and drawable
filters are discovered (models/zoo/entry.py). The file is checked against the sha256 prefix
its published name carries (models/zoo/verify.py): another file is served under a title that
says "unverified weights". Without a file the entry is listed as unavailable, with the
command that fetches it.

With ``lazy`` the file is found and hashed at once (so a listing says available and verified),
but the network is built, loaded and its layers discovered on first use (``ModelEntry.ensure_loaded``):
a server listing many models starts without building any of them.
"""

from __future__ import annotations

import os
from dataclasses import replace
from functools import partial
from pathlib import Path

from models.zoo import torchvision_zoo as zoo
from models.zoo import verify
from models.zoo.entry import ModelEntry, found_entry_fields, prepare_for_serving, unverified

TOKENS_NOTE = (
    " Its attention blocks pass tokens, which LayerScope does not draw or serve as maps: the bands"
    " show only the layers before them that are maps (a patch embedding or a convolutional stem);"
    " its predictions are the network's own."
)


def zoo_entry(name: str, weights_path: str | os.PathLike[str] | None = None, *, lazy: bool = False) -> ModelEntry:
    """torchvision's ``name`` with its ImageNet weights, when its weights file is on this machine
    (built now, or with ``lazy`` on first use)."""
    spec = zoo.spec(name)
    title = spec.weights.split("_Weights")[0]
    entry = ModelEntry(
        id=name,
        title=f"{title} (ImageNet)",
        description=(
            f"torchvision's {title} with its published ImageNet weights ({spec.weights}): it recognizes "
            f"{len(spec.classes)} kinds of everyday objects and animals in real photos."
            + (TOKENS_NOTE if spec.tokens else "")
        ),
        trained_on=f"ImageNet-1k: 1.2 million photos in {len(spec.classes)} categories",
        input_size=spec.input_size,
        mean=(spec.mean[0], spec.mean[1], spec.mean[2]),
        std=(spec.std[0], spec.std[1], spec.std[2]),
        classes=list(spec.classes),
        available=False,
        trained=True,
        metrics={} if spec.top1 is None else {"imagenet_top1": spec.top1},
        accuracy_percent=spec.top1,
        group="imagenet",
        layout="discovered",
        cam_layer=None,
        filters_layer=None,
    )
    path = Path(weights_path) if weights_path is not None else spec.weights_file
    entry.how_to_get = zoo.fetch_command(name)
    if not path.is_file():
        entry.unavailable_reason = f"The ImageNet weights are not on this machine ({path} does not exist)."
        return entry
    try:
        check = verify.check_published(path, spec.url)
    except OSError as exc:
        entry.unavailable_reason = f"The weights file {path} could not be loaded ({exc})."
        return entry
    served = replace(entry, available=True, how_to_get=None, weights_source=str(path), weights=check, default_layers=())
    listed = served if check.verified else unverified(served, title, check)
    listed.loader = partial(_served, listed, entry, spec, path)
    if not lazy:
        listed.ensure_loaded()
    return listed


def _served(listed: ModelEntry, missing: ModelEntry, spec: zoo.ZooSpec, path: Path) -> ModelEntry:
    """``listed`` with its network built from ``path`` and its layers discovered, or else ``missing``
    (the entry without weights) with the reason they could not be loaded."""
    try:
        network = zoo.build_network(spec.name, path)
    except (zoo.WeightsUnusable, OSError) as exc:
        return replace(missing, unavailable_reason=f"The weights file {path} could not be loaded ({exc}).", loader=None)
    found = found_entry_fields(network, spec.input_size)
    return replace(
        listed, network=prepare_for_serving(network), preprocess=spec.preprocess, layers=found.layers,
        default_layers=found.default_layers, view_maps=found.view_maps, cam_layer=found.cam_layer,
        filters_layer=found.filters_layer, loader=None,
    )

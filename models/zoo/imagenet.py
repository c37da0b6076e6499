"""Entries for torchvision's ImageNet classifiers by name, from their files on this machine.

A network is built by models/zoo/torchvision_zoo.py exactly as torchvision builds it for its
DEFAULT weights; its preprocessing is ``weights.transforms()``, its classes
``weights.meta["categories"]``, and its layers, default view, Grad-CAM layer and drawable
filters are discovered (models/zoo/entry.py). The file is checked against the sha256 prefix
its published name carries (models/zoo/verify.py): another file is served under a title that
says "unverified weights". Without a file the entry is listed as unavailable, with the
command that fetches it.
"""

from __future__ import annotations

import os
from pathlib import Path

from models.zoo import torchvision_zoo as zoo
from models.zoo import verify
from models.zoo.entry import ModelEntry, found_entry_fields, prepare_for_serving, unverified


def zoo_entry(name: str, weights_path: str | os.PathLike[str] | None = None) -> ModelEntry:
    """torchvision's ``name`` with its ImageNet weights, when its weights file is on this machine."""
    spec = zoo.spec(name)
    title = spec.weights.split("_Weights")[0]
    entry = ModelEntry(
        id=name,
        title=f"{title} (ImageNet)",
        description=(
            f"torchvision's {title} with its published ImageNet weights ({spec.weights}): it recognizes "
            f"{len(spec.classes)} kinds of everyday objects and animals in real photos."
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
        network = zoo.build_network(name, path)
    except (zoo.WeightsUnusable, OSError) as exc:
        entry.unavailable_reason = f"The weights file {path} could not be loaded ({exc})."
        return entry
    found = found_entry_fields(network, spec.input_size)
    entry.available, entry.how_to_get = True, None
    entry.network = prepare_for_serving(network)
    entry.preprocess = spec.preprocess
    entry.layers, entry.default_layers = found.layers, found.default_layers
    entry.cam_layer, entry.filters_layer = found.cam_layer, found.filters_layer
    entry.weights_source, entry.weights = str(path), check
    return entry if check.verified else unverified(entry, title, check)

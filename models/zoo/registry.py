"""Model registry: model id -> network, weights and the metadata a person needs.

Each model is data (title, what it was trained on, classes, preprocessing, layers and
their stages) plus code (how to build the network and where its weights come from). The
ids are ``tiny`` (written here), every torchvision classifier by name (``alexnet`` written
here with models/layers.py's table, the others by models/zoo/imagenet.py) and the tables of
an operator's configuration file (models/zoo/custom.py). The registry never downloads: a
torchvision model without weights on disk is listed as unavailable together with the command
that fetches them. A weights file whose sha256 is not the expected
one (models/zoo/verify.py) is served, but under a title and card that say "unverified
weights" and claim nothing about what it was trained on.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path

import torch
from torch import nn
from torchvision.models import AlexNet_Weights
from torchvision.transforms._presets import ImageClassification

from models.layers import describe_layers
from models.nets import MiniAlexNet, NetConfig, build_alexnet
from models.zoo import custom, tinyweights, verify
from models.zoo import torchvision_zoo as zoo
from models.zoo.entry import ModelEntry, prepare_for_serving, unverified
from models.zoo.imagenet import zoo_entry

WEIGHTS_DIR = tinyweights.WEIGHTS_DIR
ALEXNET_WEIGHTS = AlexNet_Weights.IMAGENET1K_V1
FETCH_COMMAND = zoo.fetch_command("alexnet")


# ---------------------------------------------------------------- tiny


def tiny_entry(weights_dir: Path = WEIGHTS_DIR) -> ModelEntry:
    """Our MiniAlexNet. Without shipped weights it is served untrained, and says so."""
    if (weights_dir / tinyweights.META_FILE).exists():
        network, meta, check = tinyweights.load_served(weights_dir)
        entry = _tiny(network, meta.input_size, meta.mean, meta.std, list(meta.classes))
        source = str(weights_dir / tinyweights.WEIGHTS_FILE)
        accuracy = None if meta.accuracy is None else meta.accuracy * 100
        entry = replace(
            entry, trained=True, trained_on=meta.trained_on, weights_source=source, metrics=dict(meta.metrics),
            accuracy_percent=accuracy, checkpoints=meta.checkpoints, taught_parts=meta.taught_parts,
            assets_source=source, dissection_file=weights_dir / tinyweights.DISSECTION_FILE, weights=check,
        )
        # Shipped explanation files stay: they are trusted only for the sha256 they name.
        return entry if check.verified else unverified(entry, "MiniAlexNet", check)
    config = NetConfig()
    torch.manual_seed(0)
    classes = [f"class {i}" for i in range(config.num_classes)]
    return _tiny(MiniAlexNet(config), 128, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), classes)


def _tiny(
    network: nn.Module,
    input_size: int,
    mean: tuple[float, float, float],
    std: tuple[float, float, float],
    classes: list[str],
) -> ModelEntry:
    """The tiny entry with ``network``, untrained until the caller says otherwise."""
    return ModelEntry(
        id="tiny",
        title="MiniAlexNet (parts world)",
        description=(
            "A small AlexNet-style network trained by LayerScope on generated pictures of "
            "objects built from parts. It knows only those objects, not real photos."
        ),
        trained_on="nothing yet: these are random initial weights",
        input_size=input_size,
        mean=mean,
        std=std,
        classes=classes,
        available=True,
        trained=False,
        network=prepare_for_serving(network),
        preprocess=ImageClassification(crop_size=input_size, resize_size=input_size, mean=mean, std=std),
        layers=describe_layers(network, input_size),
        # One picture: 2.2 ms on one thread, 2.3 on two (this 2-core machine). A batch of 4
        # takes 8.6 ms on one and 6.1 on two, i.e. 12.2 CPU-ms: under load (the only time the
        # server batches) one thread leaves the other core to decoding and encoding, and 8
        # clients got 145-159 requests/s against 137-140 with two.
        torch_threads=1,
        # The unfamiliar-input score is calibrated on the parts world (models/ood/); an
        # untrained model, or one whose statistics do not ship, answers "ood": null.
        familiarity=True,
    )


# ---------------------------------------------------------------- alexnet


def resolve_alexnet_weights(explicit: str | os.PathLike[str] | None) -> Path | None:
    """The weights file to use: the explicit setting, then torchvision's cache, else None."""
    if explicit:
        return Path(explicit)
    cached = zoo.weights_file("alexnet")
    return cached if cached.exists() else None


def load_alexnet(weights_path: str | os.PathLike[str] | None = None) -> ModelEntry:
    """torchvision AlexNet with ImageNet weights, when a weights file can be found."""
    meta = ALEXNET_WEIGHTS.meta
    top1 = meta["_metrics"]["ImageNet-1K"]["acc@1"]
    transforms = ALEXNET_WEIGHTS.transforms()
    entry = ModelEntry(
        id="alexnet",
        title="AlexNet (ImageNet)",
        description=(
            "torchvision's AlexNet (Krizhevsky et al., 2012) with its ImageNet-1k weights: "
            "it recognizes 1000 kinds of everyday objects and animals in real photos."
        ),
        trained_on="ImageNet-1k: 1.2 million photos in 1000 categories",
        input_size=int(transforms.crop_size[0]),
        mean=tuple(transforms.mean),
        std=tuple(transforms.std),
        classes=list(meta["categories"]),
        available=False,
        trained=True,
        metrics={"imagenet_top1": top1},
        accuracy_percent=top1,
        group="imagenet",
    )
    path = resolve_alexnet_weights(weights_path)
    if path is None:
        entry.unavailable_reason = (
            "The ImageNet weights are not on this machine (looked for LAYERSCOPE_ALEXNET_WEIGHTS "
            f"and torchvision's cache at {zoo.weights_file('alexnet')})."
        )
        entry.how_to_get = FETCH_COMMAND
        return entry
    if not path.exists():
        entry.unavailable_reason = f"The weights file {path} does not exist."
        entry.how_to_get = FETCH_COMMAND
        return entry
    network = build_alexnet()
    try:
        # The published file name carries the sha256 prefix the file must have.
        check = verify.check_published(path, zoo.weights_url("alexnet"))
        network.load_state_dict(zoo.read_state_dict(path))
    except Exception as exc:  # noqa: BLE001 - any unreadable file means "unavailable", not a crash
        entry.unavailable_reason = f"The weights file {path} could not be loaded ({type(exc).__name__})."
        entry.how_to_get = FETCH_COMMAND
        return entry
    entry.available = True
    entry.network = prepare_for_serving(network)
    entry.preprocess = transforms
    entry.layers = describe_layers(network, entry.input_size)
    entry.weights_source = str(path)
    entry.weights = check
    return entry if check.verified else unverified(entry, "AlexNet", check)


def _loaders(
    alexnet_weights: str | os.PathLike[str] | None, lazy: bool = False
) -> dict[str, Callable[[], ModelEntry]]:
    """A loader for every built-in id: tiny, then torchvision's classifiers (alexnet's own entry kept).

    With ``lazy`` every classifier but alexnet builds its network on first use; tiny and alexnet
    are always built at once.
    """
    loaders: dict[str, Callable[[], ModelEntry]] = {"tiny": tiny_entry}
    for name in zoo.classification_models():
        zoo_loader = partial(zoo_entry, name, lazy=lazy)
        loaders[name] = (lambda: load_alexnet(alexnet_weights)) if name == "alexnet" else zoo_loader
    return loaders


MODEL_IDS = tuple(_loaders(None))
KNOWN = "tiny and torchvision's classification models (`layerscope models --all` lists them)"


def load_registry(
    model_ids: list[str],
    alexnet_weights: str | os.PathLike[str] | None = None,
    config: str | os.PathLike[str] | None = None,
    lazy: bool = False,
) -> dict[str, ModelEntry]:
    """Load every listed model once, then every model of the ``config`` file (models/zoo/custom.py).

    The server calls this in its lifespan, with ``lazy``: a torchvision classifier other than
    alexnet is then listed (its weights found and hashed) but built on first use. A configured
    model is always built here, so each mistake in the file is reported at start. Raises
    ValueError for an unknown id and :class:`custom.ConfigError` for a configuration file that
    cannot be used at all.
    """
    loaders = _loaders(alexnet_weights, lazy)
    unknown = [m for m in model_ids if m not in loaders]
    if unknown:
        raise ValueError(f"unknown model id(s): {', '.join(unknown)}; known: {KNOWN}")
    entries = {model_id: loaders[model_id]() for model_id in model_ids}
    if config is not None:
        entries.update(custom.load_config(Path(config), MODEL_IDS))
    return entries

"""Model registry: model id -> network, weights and the metadata a person needs.

Each model is data (title, what it was trained on, classes, preprocessing, layers and
their stages) plus code (how to build the network and where its weights come from). The
registry never downloads: an ``alexnet`` without weights on disk is listed as unavailable
together with the command that fetches them. A weights file whose sha256 is not the expected
one (models/zoo/verify.py) is served, but under a title and card that say "unverified
weights" and claim nothing about what it was trained on.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torchvision.models import AlexNet_Weights
from torchvision.transforms._presets import ImageClassification

from models.layers import DEFAULT_LAYERS, LayerInfo, describe_layers
from models.nets import MiniAlexNet, NetConfig, build_alexnet
from models.zoo import tinyweights, verify
from models.zoo.meta import Checkpoint, TaughtParts
from models.zoo.torchvision_zoo import read_state_dict

WEIGHTS_DIR = tinyweights.WEIGHTS_DIR
ALEXNET_WEIGHTS = AlexNet_Weights.IMAGENET1K_V1
ALEXNET_URL = ALEXNET_WEIGHTS.url  # its file name carries the sha256 prefix the file must have
FETCH_COMMAND = "layerscope fetch-weights alexnet"
Preprocess = Callable[[Any], torch.Tensor]


@dataclass
class ModelEntry:
    """One servable model (or the honest reason it cannot be served).

    What a model can do beyond activations is data here, set by the registry from what the
    model ships: the web layer asks the entry, never its id.
    """

    id: str
    title: str
    description: str
    trained_on: str
    input_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    classes: list[str]
    available: bool
    trained: bool
    network: nn.Module | None = None
    preprocess: Preprocess | None = None
    layers: dict[str, LayerInfo] = field(default_factory=dict)
    default_layers: tuple[str, ...] = DEFAULT_LAYERS
    unavailable_reason: str | None = None
    how_to_get: str | None = None
    weights_source: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    # The headline accuracy in percent (on the model's own test pictures), when measured.
    accuracy_percent: float | None = None
    checkpoints: tuple[Checkpoint, ...] = ()
    # The second training task about the parts, when there was one: the page must not read
    # taught part detectors as found ones.
    taught_parts: TaughtParts | None = None
    # Intra-op threads for this model's forward passes, at most the server's setting (None:
    # the setting). A network whose layers are too small to split well does its passes on
    # fewer threads for less CPU, and the free core encodes the maps during the pass.
    torch_threads: int | None = None
    # Its answers carry the unfamiliar-input score ("ood"; null until statistics ship).
    familiarity: bool = False
    # The weights file the shipped explanation files (models/zoo/assets.py: unit sprites,
    # unfamiliar-input statistics) belong to; None: the model ships none.
    assets_source: str | None = None
    # The dissection job's unit labels for these weights; None: its units carry no labels.
    dissection_file: Path | None = None
    cam_layer: str = DEFAULT_LAYERS[-1]  # Grad-CAM's default: conv5 after its ReLU, the last spatial evidence
    filters_layer: str = "features.0"  # the convolution on the RGB input, drawable as pictures
    # The served weights file and whether its sha256 is the expected one; None: no file.
    weights: verify.WeightsCheck | None = None

    def summary(self) -> dict[str, Any]:
        """The JSON the API lists for this model."""
        return {
            "id": self.id,
            "title": self.title,
            "description": self.description,
            "trained_on": self.trained_on,
            "taught_parts": None if self.taught_parts is None else self.taught_parts.to_dict(),
            "input_size": self.input_size,
            "normalization": {"mean": list(self.mean), "std": list(self.std)},
            "classes": self.classes,
            "available": self.available,
            "trained": self.trained,
            "unavailable_reason": self.unavailable_reason,
            "how_to_get": self.how_to_get,
            "weights_source": self.weights_source,
            "weights": None if self.weights is None else self.weights.to_dict(),
            "metrics": self.metrics,
            "default_layers": list(self.default_layers),
            "layers": [self.layers[name].to_dict() for name in self.default_layers if name in self.layers],
            "checkpoints": [c.public() for c in self.checkpoints],
        }

    def checkpoint(self, name: str) -> Checkpoint | None:
        """The snapshot called ``name``, if the model has one."""
        return next((c for c in self.checkpoints if c.name == name), None)


def prepare_for_serving(network: nn.Module) -> nn.Module:
    """Evaluation mode, frozen weights, and the channels-last memory layout.

    Channels-last convolutions compute the same maps (to float rounding: 6e-7 at most on
    tiny, 1e-8 on AlexNet's logits) faster on this CPU: tiny 2.4 -> 1.6 ms a picture (batches
    and Grad-CAM alike), AlexNet 15.7 -> 14.0 ms (batch of 8: 48 -> 41 ms). The captured maps
    are copied back to the usual layout (models/capture.py), so nothing downstream sees it.
    """
    network.eval()
    for param in network.parameters():
        param.requires_grad_(False)
    return network.to(memory_format=torch.channels_last)


def unverified(entry: ModelEntry, network: str, check: verify.WeightsCheck) -> ModelEntry:
    """``entry`` serving weights that failed their check: a title and card that say so, and
    none of what was measured on the expected weights (accuracy, unit labels, snapshots)."""
    return replace(
        entry,
        title=f"{network} (unverified weights)",
        description=(
            f"The {network} network with weights from {check.file}, which is not the file this model "
            "is published with (its sha256 does not match): unverified weights, so what they were "
            "trained on and how well they do is unknown."
        ),
        trained_on="unknown: unverified weights (the file's sha256 is not the expected one)",
        metrics={}, accuracy_percent=None, checkpoints=(), taught_parts=None, dissection_file=None,
        weights=check,
    )


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


def alexnet_cache_path() -> Path:
    """Where torchvision keeps the downloaded ImageNet weights (honours $TORCH_HOME)."""
    filename = os.path.basename(ALEXNET_URL)
    return Path(torch.hub.get_dir()) / "checkpoints" / filename


def resolve_alexnet_weights(explicit: str | os.PathLike[str] | None) -> Path | None:
    """The weights file to use: the explicit setting, then torchvision's cache, else None."""
    if explicit:
        return Path(explicit)
    cached = alexnet_cache_path()
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
    )
    path = resolve_alexnet_weights(weights_path)
    if path is None:
        entry.unavailable_reason = (
            "The ImageNet weights are not on this machine (looked for LAYERSCOPE_ALEXNET_WEIGHTS "
            f"and torchvision's cache at {alexnet_cache_path()})."
        )
        entry.how_to_get = FETCH_COMMAND
        return entry
    if not path.exists():
        entry.unavailable_reason = f"The weights file {path} does not exist."
        entry.how_to_get = FETCH_COMMAND
        return entry
    network = build_alexnet()
    try:
        check = verify.check_published(path, ALEXNET_URL)
        network.load_state_dict(read_state_dict(path))
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


def _loaders(alexnet_weights: str | os.PathLike[str] | None) -> dict[str, Callable[[], ModelEntry]]:
    return {"tiny": tiny_entry, "alexnet": lambda: load_alexnet(alexnet_weights)}


MODEL_IDS = tuple(_loaders(None))


def load_registry(
    model_ids: list[str], alexnet_weights: str | os.PathLike[str] | None = None
) -> dict[str, ModelEntry]:
    """Load every listed model once (the server calls this in its lifespan)."""
    loaders = _loaders(alexnet_weights)
    unknown = [m for m in model_ids if m not in loaders]
    if unknown:
        raise ValueError(f"unknown model id(s): {', '.join(unknown)}; known: {', '.join(loaders)}")
    return {model_id: loaders[model_id]() for model_id in model_ids}

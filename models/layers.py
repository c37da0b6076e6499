"""Layers a person sees, and the stage each belongs to (the "Stages" section of docs/ARCHITECTURE.md).

Both networks share torchvision AlexNet's module layout, so one table serves both. Any
other module can still be asked for by its dotted name; it gets a generic title and the
stage of the block it sits in.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from torch import nn

from models.geometry import Geometry, sequential_geometry

STAGES = ("edges", "textures", "parts", "objects", "classes")

# Module name -> (title, stage). The default view is each conv layer after its ReLU.
ALEXNET_LAYOUT: dict[str, tuple[str, str]] = {
    "features.0": ("conv1 (before ReLU)", "edges"),
    "features.1": ("conv1", "edges"),
    "features.2": ("pool1", "edges"),
    "features.3": ("conv2 (before ReLU)", "textures"),
    "features.4": ("conv2", "textures"),
    "features.5": ("pool2", "textures"),
    "features.6": ("conv3 (before ReLU)", "parts"),
    "features.7": ("conv3", "parts"),
    "features.8": ("conv4 (before ReLU)", "parts"),
    "features.9": ("conv4", "parts"),
    "features.10": ("conv5 (before ReLU)", "objects"),
    "features.11": ("conv5", "objects"),
    "features.12": ("pool5", "objects"),
    "avgpool": ("avgpool", "objects"),
    "classifier.0": ("dropout6", "classes"),
    "classifier.1": ("fc6 (before ReLU)", "classes"),
    "classifier.2": ("fc6", "classes"),
    "classifier.3": ("dropout7", "classes"),
    "classifier.4": ("fc7 (before ReLU)", "classes"),
    "classifier.5": ("fc7", "classes"),
    "classifier.6": ("fc8 (logits)", "classes"),
}
DEFAULT_LAYERS = ("features.1", "features.4", "features.7", "features.9", "features.11")


@dataclass(frozen=True)
class LayerInfo:
    """What the API tells about one layer: where it sits and how much of the image it sees."""

    name: str
    title: str
    stage: str
    receptive_field: int
    stride: int
    offset: float

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-ready dict."""
        return asdict(self)


def describe_layers(model: nn.Module, input_size: int) -> dict[str, LayerInfo]:
    """LayerInfo for every named module of an AlexNet-layout network."""
    features = getattr(model, "features", None)
    geometry: dict[str, Geometry] = {}
    if isinstance(features, nn.Sequential):
        geometry = sequential_geometry(features, "features")
    # Past the convolutions every unit sees the whole (cropped) input.
    whole = Geometry(input_size, input_size, (input_size - 1) / 2)
    infos: dict[str, LayerInfo] = {}
    for name, _module in model.named_modules():
        if not name:
            continue
        title, stage = ALEXNET_LAYOUT.get(name, (name, _stage_of(name)))
        geo = geometry.get(name, whole)
        infos[name] = LayerInfo(name, title, stage, geo.receptive_field, geo.stride, geo.offset)
    return infos


def _stage_of(name: str) -> str:
    """The stage of a module the table does not name: that of the block it sits in."""
    return "classes" if name.startswith("classifier") else "objects"

"""torchvision's image-classification models by name, with their default weights read from this machine.

A network is built by torchvision's own builder for the model's DEFAULT weights, so every
constructor argument (the number of classes, GoogLeNet's and Inception's ``transform_input``
and auxiliary heads, ViT's image size, ...) and every fix-up after loading (DenseNet's
renaming of old keys, MNASNet's and ViT's versioned keys, dropping GoogLeNet's untrained
auxiliary heads) is torchvision's, not a copy of it. The builder is handed a private stand-in
of the weights' enum member whose ``get_state_dict`` reads the file with our own code
(``torch.load(weights_only=True)`` or safetensors); the builder then loads it strictly. The
stand-in's URL points nowhere, so nothing here can download: a missing file is a
:class:`WeightsMissing` that names the file and the command that fetches it.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch
import torchvision.models
from safetensors.torch import load_file
from torch import nn
from torchvision.models import WeightsEnum, get_model_builder, get_model_weights, list_models
from torchvision.transforms._presets import ImageClassification

FETCH_COMMAND = "layerscope fetch-weights {name}"
# torchvision's modules whose networks pass tokens between attention blocks: their maps stop
# at the patch embedding (or the convolutional stem), which is all the page can draw of them.
TOKEN_FAMILIES = frozenset({"vision_transformer", "swin_transformer", "maxvit"})
# Not a scheme anything can open: a builder that tried to download would fail at once.
_OFFLINE_SCHEME = "layerscope-offline:"


class UnknownModel(ValueError):
    """The name is not one of torchvision's image-classification models."""


class WeightsMissing(FileNotFoundError):
    """The model's weights file is not on this machine."""

    def __init__(self, name: str, path: Path) -> None:
        self.name = name
        self.path = path
        self.command = fetch_command(name)
        super().__init__(f"the weights of {name} are not on this machine ({path} does not exist); fetch them with: "
                         f"{self.command}")


class WeightsUnusable(ValueError):
    """The weights file exists but does not hold this model's state dict."""


def fetch_command(name: str) -> str:
    """The command a person runs to download ``name``'s weights."""
    return FETCH_COMMAND.format(name=name)


@functools.cache
def classification_models() -> tuple[str, ...]:
    """Every image-classification model torchvision builds, by name (no detection, video, ...)."""
    # module=torchvision.models keeps the builders defined in the top-level package only: the
    # detection, segmentation, video, optical-flow and quantization builders live in subpackages.
    return tuple(sorted(list_models(module=torchvision.models)))


def default_weights(name: str) -> WeightsEnum:
    """The weights torchvision's ``weights="DEFAULT"`` means for ``name``."""
    if name not in classification_models():
        raise UnknownModel(f"unknown model {name!r}; torchvision's classification models are "
                           f"{', '.join(classification_models())}")
    member: WeightsEnum = get_model_weights(name).DEFAULT
    return member


def weights_url(name: str) -> str:
    """Where torchvision downloads ``name``'s default weights from (for the fetch command)."""
    return str(default_weights(name).url)


def weights_file(name: str) -> Path:
    """Where torchvision keeps ``name``'s downloaded weights: ``$TORCH_HOME/hub/checkpoints/<file>``."""
    # torch.hub names the cached file after the URL path's last part, and honours $TORCH_HOME.
    filename = os.path.basename(urlparse(weights_url(name)).path)
    return Path(torch.hub.get_dir()) / "checkpoints" / filename


@dataclass(frozen=True)
class ZooModel:
    """One classification model and whether its weights file is on this machine."""

    name: str
    weights: str  # the weights' torchvision name, e.g. "ResNet18_Weights.IMAGENET1K_V1"
    weights_file: Path
    present: bool


def available_models() -> list[ZooModel]:
    """Every classification model, each with its weights file and whether that file exists."""
    listing = []
    for name in classification_models():
        path = weights_file(name)
        listing.append(ZooModel(name, repr(default_weights(name)), path, path.is_file()))
    return listing


@dataclass(frozen=True)
class ZooSpec:
    """What torchvision says about one model and its default weights, before any file is read."""

    name: str
    weights: str  # e.g. "ResNet18_Weights.IMAGENET1K_V1"
    url: str
    weights_file: Path
    classes: tuple[str, ...]
    preprocess: ImageClassification
    input_size: int
    resize_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    meta: dict[str, Any]
    # Whether the network passes tokens between attention blocks (TOKEN_FAMILIES).
    tokens: bool = False

    @property
    def top1(self) -> float | None:
        """ImageNet-1k top-1 accuracy in percent that torchvision reports for these weights."""
        value = self.meta.get("_metrics", {}).get("ImageNet-1K", {}).get("acc@1")
        return None if value is None else float(value)


def spec(name: str) -> ZooSpec:
    """``name``'s default weights described: classes, preprocessing (``weights.transforms()``), file."""
    member = default_weights(name)
    transforms = member.transforms()
    return ZooSpec(
        name=name,
        weights=repr(member),
        url=str(member.url),
        weights_file=weights_file(name),
        classes=tuple(member.meta["categories"]),
        preprocess=transforms,
        input_size=int(transforms.crop_size[0]),
        resize_size=int(transforms.resize_size[0]),
        mean=tuple(float(m) for m in transforms.mean),
        std=tuple(float(s) for s in transforms.std),
        meta=dict(member.meta),
        tokens=get_model_builder(name).__module__.rpartition(".")[2] in TOKEN_FAMILIES,
    )


@dataclass
class LoadedModel:
    """A built network with its weights, the file they came from, and its :class:`ZooSpec`."""

    spec: ZooSpec
    network: nn.Module
    weights_path: Path


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A state dict from a .safetensors file or a torch file (tensors only, never pickled code)."""
    try:
        if path.suffix == ".safetensors":
            return load_file(str(path))
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WeightsUnusable(f"{path} could not be read as weights ({type(exc).__name__}: {_short(exc)})") from exc
    if not isinstance(state, dict):
        raise WeightsUnusable(f"{path} does not hold a state dict")
    return state


def build_network(name: str, path: str | os.PathLike[str] | None = None) -> nn.Module:
    """``name``'s network exactly as torchvision builds it for its default weights, loaded from ``path``.

    ``path`` defaults to torchvision's cache (:func:`weights_file`). The network comes back in
    evaluation mode. Raises :class:`WeightsMissing`, or :class:`WeightsUnusable` for a file
    that cannot be read or does not fit the network.
    """
    member = default_weights(name)
    file = Path(path) if path is not None else weights_file(name)
    if not file.is_file():
        raise WeightsMissing(name, file)
    reads: list[Path] = []

    def reader(*_args: object, **_kwargs: object) -> dict[str, torch.Tensor]:
        reads.append(file)
        return read_state_dict(file)

    builder = get_model_builder(name)
    try:
        network = builder(weights=_stand_in(member, reader), progress=False)
    except WeightsUnusable:
        raise
    except (RuntimeError, ValueError, KeyError) as exc:
        raise WeightsUnusable(f"{file} does not fit {name}: {_short(exc)}") from exc
    if len(reads) != 1:
        raise RuntimeError(f"torchvision's {name} builder did not load its weights through get_state_dict")
    return network.eval()


def load(name: str, path: str | os.PathLike[str] | None = None) -> LoadedModel:
    """:func:`build_network` together with :func:`spec`: the network and how to feed and read it."""
    network = build_network(name, path)
    return LoadedModel(spec(name), network, Path(path) if path is not None else weights_file(name))


def _short(exc: Exception, limit: int = 300) -> str:
    """An exception as one line of at most ``limit`` characters (load_state_dict lists every key)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _stand_in(member: WeightsEnum, reader: Callable[..., dict[str, torch.Tensor]]) -> WeightsEnum:
    """A private instance of ``member``'s enum class: same metadata, its state dict from ``reader``.

    The builders check ``isinstance(weights, TheirEnum)``, read ``weights.meta`` and call
    ``weights.get_state_dict(...)``; the stand-in answers all three and leaves the enum and its
    members untouched (nothing global is patched, so concurrent builds cannot interfere).
    """
    enum_class = type(member)
    stand_in = object.__new__(enum_class)
    filename = os.path.basename(urlparse(member.url).path)
    stand_in._value_ = dataclasses.replace(member.value, url=_OFFLINE_SCHEME + filename)
    stand_in._name_ = member.name
    # An instance attribute shadows WeightsEnum.get_state_dict, the download.
    setattr(stand_in, "get_state_dict", reader)  # noqa: B010 - mypy forbids assigning to a method
    return stand_in

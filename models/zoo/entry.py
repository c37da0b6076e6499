"""A model entry: one servable model, or the honest reason it cannot be served.

The registry (models/zoo/registry.py) makes the entries; the web layer reads them and never
a model's id. :func:`found_entry_fields` fills a network's layers, default view, Grad-CAM
layer and drawable filters from layer discovery (models/discovery/), for any network that
has no hand-written table.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from models.discovery import Discovery, discover
from models.discovery.every import every_layer
from models.layers import DEFAULT_LAYERS, LayerInfo
from models.zoo import verify
from models.zoo.meta import Checkpoint, TaughtParts

Preprocess = Callable[[Any], torch.Tensor]
# The default view's map values at most: 8-bit atlases of dense maps take up to 1.8 bytes a
# value in the JSON (base64), so half a million keeps a default answer under 1 MB.
ANSWER_VALUES = 500_000
LEAST_VIEW = 5
# A trimmed layer still carries the maps the page draws large (static/js/bands.js, TOP).
LEAST_MAPS = 8


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
    # Layers of the default view whose answer carries only their most active maps, and how
    # many (a wide network's view within ANSWER_VALUES); the others carry all of theirs.
    view_maps: dict[str, int] = field(default_factory=dict)
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
    # Grad-CAM's default, the last spatial evidence (AlexNet-style: conv5 after its ReLU); None: no spatial layer.
    cam_layer: str | None = DEFAULT_LAYERS[-1]
    # The convolution on the RGB input, drawable as pictures; None: the first layer is no such convolution.
    filters_layer: str | None = "features.0"
    # The served weights file and whether its sha256 is the expected one; None: no file.
    weights: verify.WeightsCheck | None = None
    # Where the model comes from, for the page's picker: "embedded", "imagenet" or "custom".
    group: str = "embedded"
    # "alexnet": torchvision AlexNet's module layout, whose layers the page may call conv1..conv5;
    # "discovered": layers found by models/discovery, so the page's words name no conv layer.
    layout: str = "alexnet"
    # Pictures one forward pass may carry (None: as many as the server batches); an exported
    # program traced for one picture takes one at a time.
    max_batch: int | None = None
    # Builds the served entry on first use (models/zoo/imagenet.py); None: built already. Until
    # then the entry holds what listing it needs (availability, weights check) but no network,
    # layers, default view, Grad-CAM or filters layer.
    loader: Callable[[], ModelEntry] | None = field(default=None, repr=False, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @property
    def loaded(self) -> bool:
        """Whether its network is built (or it never will be): False only before a first use."""
        return self.loader is None

    def ensure_loaded(self) -> None:
        """Build a first-use entry now, once, whichever thread asks first; the others wait for it.

        The entry keeps its identity (the registry and the teaching sessions hold it): the built
        entry's fields are copied into it. A build that fails leaves it unavailable, with the reason.
        """
        with self._lock:
            loader = self.loader
            if loader is None:
                return
            try:
                built = loader()
            except Exception as exc:  # noqa: BLE001 - a network that cannot be built is "unavailable", not a crash
                self.available, self.network = False, None
                self.unavailable_reason = f"The network could not be built ({type(exc).__name__}: {exc})."
            else:
                for f in fields(self):
                    if f.name not in ("loader", "_lock"):
                        setattr(self, f.name, getattr(built, f.name))
            self.loader = None

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
            "group": self.group,
            "layout": self.layout,
            "loaded": self.loaded,
            "cam_layer": self.cam_layer,
            "filters_layer": self.filters_layer,
            "default_layers": list(self.default_layers),
            "view_maps": dict(self.view_maps),
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


@dataclass(frozen=True)
class FoundFields:
    """What layer discovery says an entry shows: its layers, default view, Grad-CAM and filters layers."""

    layers: dict[str, LayerInfo]
    default_layers: tuple[str, ...]
    view_maps: dict[str, int]
    cam_layer: str | None
    filters_layer: str | None


def found_entry_fields(network: nn.Module, input_size: int) -> FoundFields:
    """The layer fields of an entry for ``network`` on square ``input_size`` pictures, discovered.

    Every module that can be asked for is in ``layers`` (models/discovery/every.py), the
    offered blocks with the geometry and stage discovery gave them.
    """
    found = discover(network, input_size)
    view = served_view(found)
    spatial = [name for name in view.layers if found[name].spatial]
    layers = every_layer(network, found)
    return FoundFields(layers, view.layers, view.maps, spatial[-1] if spatial else None, first_rgb_conv(network))


@dataclass(frozen=True)
class ServedView:
    """The default view: its layers, and for the widest the number of maps its answer carries."""

    layers: tuple[str, ...]
    maps: dict[str, int]

    def values(self, found: Discovery) -> int:
        """The map values of an answer for this view."""
        return sum(_values(found, name, self.maps.get(name)) for name in self.layers)


def _values(found: Discovery, name: str, maps: int | None = None) -> int:
    shape = found[name].shape
    return math.prod(shape) if maps is None else maps * math.prod(shape[1:])


def shared_maps(found: Discovery, layers: Sequence[str], budget: int, least: int = LEAST_MAPS) -> dict[str, int]:
    """How many maps each of ``layers`` carries for the answer to hold about ``budget`` values.

    The budget is shared out evenly, smallest layer first: a layer within its share carries
    all its maps and leaves the rest of its share to the wider ones; a wider layer carries as
    many of its most active maps as its share holds, never fewer than ``least``.
    """
    maps: dict[str, int] = {}
    left = budget
    ordered = sorted(layers, key=lambda name: _values(found, name))
    for done, name in enumerate(ordered):
        share = left / (len(ordered) - done)
        full = _values(found, name)
        if full > share and found[name].spatial:
            channels, per_map = found[name].shape[0], _values(found, name, 1)
            count = min(channels, max(least, int(share // per_map)))
            if count < channels:
                maps[name] = count
                full = count * per_map
        left -= full
    return maps


def served_view(found: Discovery, budget: int = ANSWER_VALUES, least: int = LEAST_VIEW) -> ServedView:
    """Discovery's default view, within ``budget`` map values where it can be.

    The widest layers first carry only their most active maps (``shared_maps``: the maps the
    page draws large are always there, the rest one request away). Where the view is still
    over the budget and longer than ``least``, the layer with the most values goes whose stage
    another layer of the view still shows (a network's first, full-resolution maps, usually),
    and the budget is shared again: every stage keeps a band, and the answer stays small.
    """
    view = list(found.default_layers)
    while True:
        whole = sum(_values(found, name) for name in view) <= budget
        served = ServedView(tuple(view), {} if whole else shared_maps(found, view, budget))
        if served.values(found) <= budget or len(view) <= least:
            return served
        stages = [found[n].stage for n in view]
        shared = [n for n in view if stages.count(found[n].stage) > 1]
        if not shared:
            return served
        view.remove(max(shared, key=lambda name: _values(found, name)))


def first_rgb_conv(network: nn.Module) -> str | None:
    """The network's first weighted module when it is a 2-D convolution on 3 channels, else None.

    Its kernels live in pixel space, so they can be drawn as pictures; a first layer of any
    other kind (a linear layer, a 1-channel convolution) has no such picture.
    """
    for name, module in network.named_modules():
        if next(module.children(), None) is not None or not any(True for _ in module.parameters(recurse=False)):
            continue
        return name if isinstance(module, nn.Conv2d) and module.in_channels == 3 else None
    return None

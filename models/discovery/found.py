"""The layers to show for any network: its blocks, where each sits on the picture, its stage, a default view.

``discover(network, input_size)`` runs one traced pass (models/discovery/trace.py), picks the
natural blocks (models/discovery/blocks.py) and places each on the picture
(models/discovery/placement.py). A layer's stage comes from its depth: the maps a person is
shown (no poolings, no 1x1 maps) are ranked in forward order, and the first fifth of the way
is edges, then textures to 45 %, parts to 80 %, objects beyond; a pooling or a 1x1 map has
the stage of the map before it, a vector (a classifier's) is classes. By depth rather than
by receptive field, because fields outgrow the picture early in deep networks (DenseNet's
second dense block already sees 255 pixels of 224) while the stages are meant to spread
over the network; the bounds put AlexNet's conv1-conv5 in the stages models/layers.py gives
them, at any input size (tiny's too).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from torch import nn

from models.discovery.blocks import Candidate, candidates
from models.discovery.placement import Placer, is_map, whole
from models.discovery.probe import one_thread
from models.discovery.trace import run_trace
from models.geometry import Geometry
from models.layers import STAGES, LayerInfo

# (share of the way through the shown maps, the stage below it)
STAGE_BOUNDS = ((0.2, "edges"), (0.45, "textures"), (0.8, "parts"))
DEFAULT_VIEW_SIZE = 6


def stage_at(depth: float) -> str:
    """The stage of a map ``depth`` of the way (0 first, 1 last) through the maps a person is shown."""
    return next((stage for bound, stage in STAGE_BOUNDS if depth < bound), "objects")


@dataclass(frozen=True)
class FoundLayer:
    """One offered layer: what it is, its output shape (no batch axis), its geometry and stage."""

    name: str
    title: str
    kind: str
    stage: str
    shape: tuple[int, ...]
    receptive_field: int
    stride: int
    offset: float
    pool: bool = False

    @property
    def spatial(self) -> bool:
        """Its output is a stack of maps (not a vector)."""
        return len(self.shape) == 3

    def info(self) -> LayerInfo:
        """The API's description of this layer."""
        return LayerInfo(self.name, self.title, self.stage, self.receptive_field, self.stride, self.offset)


@dataclass(frozen=True)
class Discovery:
    """The offered layers of one network in forward order, and the few shown by default."""

    input_size: int
    layers: tuple[FoundLayer, ...]
    default_layers: tuple[str, ...]

    def infos(self) -> dict[str, LayerInfo]:
        """Layer name -> LayerInfo, for a model entry's ``layers``."""
        return {layer.name: layer.info() for layer in self.layers}

    def __getitem__(self, name: str) -> FoundLayer:
        return next(layer for layer in self.layers if layer.name == name)


def discover(
    network: nn.Module, input_size: int, channels: int = 3, view_size: int = DEFAULT_VIEW_SIZE
) -> Discovery:
    """Find ``network``'s layers to show for square ``input_size`` pictures.

    One forward pass in evaluation mode (training flags restored), plus small gradient
    probes on copies of the blocks whose geometry cannot be read off their modules, all on
    one torch thread (restored after). The network itself is not changed.
    """
    with one_thread():
        trace = run_trace(network, input_size, channels)
        placer = Placer(trace)
        found: list[tuple[Candidate, tuple[int, ...], Geometry]] = []
        for candidate in candidates(trace):
            call = trace.first(candidate.name)
            assert call is not None and call.output_shape is not None
            shape = call.output_shape
            geometry = whole(input_size) if len(shape) == 2 else None
            if is_map(shape):
                geometry = placer.output(candidate.name)
            if geometry is not None:  # None: tokens, channels-last maps, or a map that cannot be placed
                found.append((candidate, shape[1:], geometry))
    shown = [i for i, (c, shape, _g) in enumerate(found) if _is_shown(c, shape)]
    stages = [STAGES[-1] if len(shape) == 1 else "edges" for _c, shape, _g in found]
    for rank, index in enumerate(shown):
        stages[index] = stage_at(rank / max(len(shown) - 1, 1))
    for index in range(1, len(found)):
        if len(found[index][1]) == 3 and index not in shown:
            stages[index] = stages[index - 1]  # a pooling: the stage of the map it pools
    layers = tuple(
        FoundLayer(c.name, _title(c), c.kind, stage, shape, g.receptive_field, g.stride, g.offset, c.pool)
        for (c, shape, g), stage in zip(found, stages, strict=True)
    )
    return Discovery(input_size, layers, default_view(layers, view_size))


def _is_shown(candidate: Candidate, shape: tuple[int, ...]) -> bool:
    """A map a person is shown: not a pooling, not a 1x1 summary."""
    return len(shape) == 3 and not candidate.pool and shape[-1] > 1


def _title(candidate: Candidate) -> str:
    kind = f"{candidate.kind} after {candidate.head}" if candidate.head else candidate.kind
    return f"{candidate.name} ({kind})"


def default_view(layers: list[FoundLayer] | tuple[FoundLayer, ...], size: int = DEFAULT_VIEW_SIZE) -> tuple[str, ...]:
    """About ``size`` maps spread over the stages: the first, the deepest of each stage, then the gaps' middles.

    Poolings and 1x1 maps are left out (they repeat or summarize the layer before them), and
    so are the classes (the page shows the prediction itself), as in AlexNet's default view.
    """
    shown = [layer for layer in layers if layer.spatial and not layer.pool and layer.shape[-1] > 1]
    if len(shown) <= size:
        return tuple(layer.name for layer in shown)
    last_of_stage = {layer.stage: index for index, layer in enumerate(shown)}
    chosen = {0, len(shown) - 1, *last_of_stage.values()}
    while len(chosen) < size:
        # The middle of the widest gap (in forward order) between chosen layers; the deeper gap on a tie.
        order = sorted(chosen)
        width, start = max((b - a, a) for a, b in itertools.pairwise(order))
        chosen.add(start + width // 2)
    return tuple(shown[i].name for i in sorted(chosen))

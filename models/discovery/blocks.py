"""Which modules a person is offered: a network's natural blocks, from its module tree and one traced pass.

The tree is walked from the top. A module with a ``forward`` of its own (a residual block,
an inverted residual, a dense block, an Inception block, a custom block) is one block and is
offered whole; its insides are its own business. A container that only chains its children
(``nn.Sequential`` and its subclasses) is looked into, unless it is one small unit itself
(all leaves, at most one convolution or linear layer: a conv-norm-activation, DenseNet's
transition, a classifier head), which is offered whole. Loose leaves in a chain (VGG's and
AlexNet's ``features``, ResNet's stem) are grouped into units: a convolution or linear layer
with the norms and activations after it, offered by its last member ("each convolution after
its ReLU"); each pooling is a unit of its own. A module that ran more than once in the pass
(a ReLU shared by a block's two convolutions) is never offered: its output would be
ambiguous.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from models.discovery.trace import Trace

WEIGHTED = (nn.modules.conv._ConvNd, nn.Linear, nn.Bilinear)
POOLS = (
    nn.modules.pooling._MaxPoolNd,
    nn.modules.pooling._AvgPoolNd,
    nn.modules.pooling._AdaptiveAvgPoolNd,
    nn.modules.pooling._AdaptiveMaxPoolNd,
    nn.modules.pooling._LPPoolNd,
)
QUIET = (nn.modules.dropout._DropoutNd, nn.Identity, nn.Flatten, nn.Unflatten)  # never a unit's face


@dataclass(frozen=True)
class Candidate:
    """A module offered to a person, in the order the forward pass reached it."""

    name: str
    kind: str  # the module's class name
    head: str | None = None  # the convolution or linear layer a unit's last member follows
    pool: bool = False


def is_plain(module: nn.Module) -> bool:
    """A container that only chains its children (or is never called: a ModuleList, a ModuleDict)."""
    forward = type(module).forward
    return forward is nn.Sequential.forward or forward is nn.Module.forward


class _Walk:
    def __init__(self, trace: Trace) -> None:
        self.trace = trace
        self.found: list[Candidate] = []

    def offer(self, name: str, head: str | None = None, pool: bool = False) -> None:
        call = self.trace.first(name)
        if self.trace.ran_once(name) and call is not None and call.output_shape is not None:
            kind = type(self.trace.modules[name]).__name__
            self.found.append(Candidate(name, kind, head if head != name else None, pool))

    def flush(self, unit: list[str]) -> None:
        """Offer a unit by its last member that ran once and is not dropout-like."""
        faces = [m for m in unit if self.trace.ran_once(m) and not isinstance(self.trace.modules[m], QUIET)]
        if faces:
            head = unit[0] if isinstance(self.trace.modules[unit[0]], WEIGHTED) else None
            self.offer(faces[-1], head)

    def start(self, name: str) -> int | None:
        """When the pass first reached ``name`` or, for a never-called container, anything inside it."""
        call = self.trace.first(name)
        if call is not None:
            return call.start
        if not is_plain(self.trace.modules[name]):
            return None
        prefix = f"{name}."
        starts = [calls[0].start for sub, calls in self.trace.calls.items() if calls and sub.startswith(prefix)]
        return min(starts) if starts else None

    def is_unit(self, name: str) -> bool:
        children = self.trace.children[name]
        if not children or any(self.trace.children[c] for c in children):
            return False
        return sum(isinstance(self.trace.modules[c], WEIGHTED) for c in children) <= 1

    def walk(self, name: str) -> None:
        reached = [(start, c) for c in self.trace.children[name] if (start := self.start(c)) is not None]
        unit: list[str] = []
        for _start, child in sorted(reached):
            module = self.trace.modules[child]
            if not self.trace.children[child]:
                if isinstance(module, WEIGHTED):
                    self.flush(unit)
                    unit = [child]
                elif isinstance(module, POOLS):
                    self.flush(unit)
                    unit = []
                    self.offer(child, pool=True)
                elif unit or not isinstance(module, QUIET):
                    unit.append(child)
                continue
            self.flush(unit)
            unit = []
            if is_plain(module) and not self.is_unit(child):
                self.walk(child)
            else:
                self.offer(child)
        self.flush(unit)


def candidates(trace: Trace) -> list[Candidate]:
    """The modules to offer, in the order the forward pass reached them."""
    walk = _Walk(trace)
    walk.walk("")
    return walk.found

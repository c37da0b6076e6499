"""Where each module's output sits on the input picture: receptive field, stride and offset, for any network.

A module's geometry relative to its own input (its *transfer*) is read off the module where
that is exact, and measured (models/discovery/probe.py) where it is not:

- a convolution or max/average pooling: from its kernel, stride, padding and dilation, as
  models/geometry.py does for AlexNet's chain;
- a pointwise module (a norm, an activation, dropout) whose output has its input's shape:
  the identity;
- a container whose children run as a chain (each child gets the tensor the one before
  returned: every ``nn.Sequential``, and a ``forward`` that only chains): the composition of
  the children's transfers;
- anything else (a residual block, a dense block, an Inception block, a module unknown
  here): measured by the gradient probe, on that module alone at a small picture.

A module's place on the input is then composed from the top: the network's input is the
identity, a child's input is where its predecessor's output sits when the chain link holds,
and where the link does not hold (functional code between two children, such as GoogLeNet's
``transform_input``) the probe measures the parent from its input up to that child's input.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from models.discovery.probe import Target, measure
from models.discovery.trace import Call, TensorKey, Trace
from models.geometry import Geometry

IDENTITY = Geometry(1, 1, 0.0)
GEOMETRIC = (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)
ADAPTIVE = (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)
ACTIVATIONS = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.RReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Mish,
    nn.Hardswish, nn.Hardsigmoid, nn.Sigmoid, nn.Tanh, nn.Hardtanh, nn.Softplus, nn.Softsign, nn.Tanhshrink,
    nn.Threshold, nn.LogSigmoid, nn.Hardshrink, nn.Softshrink,
)
NORMS = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.LocalResponseNorm)
TRIVIAL = (nn.modules.dropout._DropoutNd, nn.Identity)
POINTWISE = ACTIVATIONS + NORMS + TRIVIAL


def compose(outer: Geometry, inner: Geometry) -> Geometry:
    """``inner`` (relative to a tensor) applied after ``outer`` (that tensor relative to the picture)."""
    return Geometry(
        outer.receptive_field + (inner.receptive_field - 1) * outer.stride,
        outer.stride * inner.stride,
        outer.offset + inner.offset * outer.stride,
    )


def whole(input_size: int) -> Geometry:
    """A unit that sees the whole (square) picture, as models/layers.py says of layers past the convolutions."""
    return Geometry(input_size, input_size, (input_size - 1) / 2)


def is_map(shape: tuple[int, ...] | None) -> bool:
    """A batch of square channels-first maps (what a square picture gives a convolutional layer)."""
    return shape is not None and len(shape) == 4 and shape[-1] == shape[-2]


def _pooled(shape: tuple[int, ...] | None) -> bool:
    """A 1x1 map: what a global pooling leaves of a picture."""
    return shape is not None and shape[-2:] == (1, 1)


def _square(value: Any) -> int | None:
    if isinstance(value, int):
        return value
    values = tuple(value)
    return int(values[0]) if len(set(values)) == 1 else None


def leaf_transfer(module: nn.Module, call: Call) -> Geometry | None:
    """A convolution's or pooling's geometry from its settings, a pointwise module's identity; else None."""
    if isinstance(module, POINTWISE):
        return IDENTITY if call.input_shape == call.output_shape else None
    if not isinstance(module, GEOMETRIC):
        return None
    kernel, stride = _square(module.kernel_size), _square(module.stride)
    dilation = _square(getattr(module, "dilation", 1))
    if kernel is None or stride is None or dilation is None:
        return None
    effective = dilation * (kernel - 1) + 1
    padding: Any = module.padding
    if padding == "valid":
        padding = 0
    elif padding == "same":
        padding = (effective - 1) // 2  # PyTorch puts the odd pixel of "same" padding on the far side
    left = _square(padding)
    return None if left is None else Geometry(effective, stride, (effective - 1) / 2 - left)


class Placer:
    """Absolute geometry of modules of one traced network, each measured at most once."""

    def __init__(self, trace: Trace) -> None:
        self.trace = trace
        self._transfers: dict[str, Geometry | None] = {}
        self._inputs: dict[str, Geometry | None] = {"": IDENTITY}

    def output(self, name: str) -> Geometry | None:
        """Where ``name``'s (first) output sits on the picture; None if it is no map or cannot be placed."""
        module = self.trace.modules[name]
        call = self.trace.first(name)
        if call is None:
            return None
        if is_map(call.output_shape) and (isinstance(module, ADAPTIVE) or _pooled(call.output_shape)):
            return whole(self.trace.input_size)
        placed, transfer = self.input(name), self.transfer(name)
        if placed is not None and transfer is not None:
            return compose(placed, transfer)
        if is_map(call.output_shape) and not is_map(call.input_shape):  # a list of maps in (a DenseNet layer's)
            inner = self.trace.child_calls(name, call)
            if inner and inner[-1][1].output_key is not None and inner[-1][1].output_key == call.output_key:
                return self.output(inner[-1][0])  # it returns its last child's output, placed already
            return self._from_anchor(name, "output")
        return None

    def transfer(self, name: str) -> Geometry | None:
        """``name``'s geometry relative to its own input (memoized)."""
        if name not in self._transfers:
            self._transfers[name] = self._transfer(name)
        return self._transfers[name]

    def _transfer(self, name: str) -> Geometry | None:
        call = self.trace.first(name)
        if call is None or not is_map(call.input_shape) or not is_map(call.output_shape):
            return None
        module = self.trace.modules[name]
        if isinstance(module, ADAPTIVE) or _pooled(call.output_shape):
            return None  # its window depends on the picture's size: output() places it as the whole picture
        if not self.trace.children.get(name):
            known = leaf_transfer(module, call)
            return known if known is not None else self._measure(name, Target(""))
        chain = self.trace.chain(name)
        if chain is not None:
            geometry: Geometry | None = IDENTITY
            for child, _call in chain:
                step = self.transfer(child)
                geometry = None if geometry is None or step is None else compose(geometry, step)
            if geometry is not None:
                return geometry
        return self._measure(name, Target(""))

    def input(self, name: str) -> Geometry | None:
        """Where ``name``'s (first) input sits on the picture (memoized)."""
        if name not in self._inputs:
            self._place_children(self.trace.caller_of(name))
        return self._inputs.get(name)

    def _place_children(self, parent: str) -> None:
        """Place the input of every child of ``parent`` that ran during its first call."""
        during = self.trace.first(parent)
        if during is None:
            return
        previous_key, previous = during.input_key, self.input(parent)
        counts: dict[str, int] = {}
        for child, call in self.trace.child_calls(parent, during):
            index = counts.get(child, 0)
            counts[child] = index + 1
            if call.input_key is not None and call.input_key == previous_key:
                placed = previous
            elif not is_map(call.input_shape):
                placed = None  # past the maps (a classifier on pooled features): nothing to place
            else:
                relative = child[len(parent) + 1 :] if parent else child
                base = self.input(parent)
                step = self._measure(parent, Target(relative, index, "input"))
                placed = None if base is None or step is None else compose(base, step)
                if placed is None and index == 0:
                    placed = self._joined(during, call) or self._from_anchor(child, "input")
            if index == 0:
                self._inputs[child] = placed
            transfer = self.transfer(child)
            previous_key = call.output_key
            previous = None if placed is None or transfer is None else compose(placed, transfer)

    def _joined(self, during: Call, call: Call) -> Geometry | None:
        """Where ``call``'s input sits when it is the channel concatenation of the list of maps
        its parent took (``during``): the union of where the parts sit, all at one stride and
        offset (a DenseNet layer's); None where the shapes say it is not, or a part is not placed."""
        shape = call.input_shape
        if not during.parts or shape is None or not is_map(shape):
            return None
        shapes = [part_shape for _key, part_shape in during.parts]
        if any(len(s) != 4 or s[2:] != shape[2:] for s in shapes) or sum(s[1] for s in shapes) != shape[1]:
            return None
        placed = [self._producer(key) for key, _shape in during.parts]
        if any(p is None for p in placed) or len({(p.stride, p.offset) for p in placed if p is not None}) != 1:
            return None
        first = placed[0]
        assert first is not None
        return Geometry(max(p.receptive_field for p in placed if p is not None), first.stride, first.offset)

    def _producer(self, key: TensorKey) -> Geometry | None:
        """Where the tensor ``key`` sits: the output of the module whose first call returned it."""
        for name, calls in self.trace.calls.items():
            if name and calls and calls[0].output_key == key:
                return self.output(name)
        return None

    def _from_anchor(self, name: str, where: str) -> Geometry | None:
        """``name``'s first input or output measured from its nearest enclosing module that
        takes one map: for modules whose parent takes a list of maps (a DenseNet layer takes
        every map its block made so far), which the probe cannot feed on its own."""
        anchor = self.trace.caller_of(name)
        while anchor:
            first = self.trace.first(anchor)
            if first is not None and is_map(first.input_shape):
                break
            anchor = self.trace.caller_of(anchor)
        base = self.input(anchor)
        if base is None:
            return None
        step = self._measure(anchor, Target(name[len(anchor) + 1 :] if anchor else name, 0, where))
        return None if step is None else compose(base, step)

    def _measure(self, name: str, target: Target) -> Geometry | None:
        """The probe on module ``name``, from its input to ``target``."""
        call = self.trace.first(name)
        if call is None or not is_map(call.input_shape):
            return None
        assert call.input_shape is not None
        channels, real = call.input_shape[1], call.input_shape[-1]
        return measure(self.trace.modules[name], channels, (self._first_guess(name, call, target), real), target)

    def _first_guess(self, name: str, call: Call, target: Target) -> int:
        """A probe picture big enough for the target's field (the sum of the windows before it) and two units."""
        full = f"{name}.{target.name}" if name and target.name else name or target.name
        calls = self.trace.calls.get(full) or [call]
        aim = calls[min(target.call_index, len(calls) - 1)]
        limit = aim.start if target.where == "input" else aim.end
        real = call.input_shape[-1] if call.input_shape else 1
        reach = 0.0
        for sub, sub_calls in self.trace.calls.items():
            inside = sub.startswith(f"{name}.") if name else bool(sub)
            module = self.trace.modules[sub]
            if not inside or not sub_calls or not isinstance(module, GEOMETRIC):
                continue
            first = sub_calls[0]
            if first.within(call) and first.start < limit and is_map(first.input_shape):
                assert first.input_shape is not None
                geometry = leaf_transfer(module, first)
                window = geometry.receptive_field if geometry is not None else 1
                reach += (window - 1) * real / first.input_shape[-1]
        shape = aim.input_shape if target.where == "input" else aim.output_shape
        stride = real / shape[-1] if is_map(shape) and shape is not None else 1.0
        # The probe reads each edge of a field where the border cannot cut it: half the field is enough.
        return max(int(reach / 2 + 4 * stride) + 4, 8)

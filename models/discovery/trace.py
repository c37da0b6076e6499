"""One forward pass that records every module call: what went in, what came out, and in what order.

The record is what layer discovery reads the network's data flow from: a module ran once
or several times (a shared ReLU), its input and output shapes, and whether a module's input
is literally the tensor the module before it returned. A tensor is known by its storage
address, offset, shape, strides and version counter: equal keys mean the same values in
the same layout with no in-place change in between (an in-place residual ``out += x``
bumps the version), and every tensor of the pass is kept alive until it ends, so no address
is reused for a different tensor.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import torch
from torch import nn

from models.capture import Hook, hooked

TensorKey = tuple[int, int, tuple[int, ...], tuple[int, ...], int]


def tensor_key(tensor: torch.Tensor) -> TensorKey:
    """What makes two tensors the same data at the same moment."""
    return (
        tensor.untyped_storage().data_ptr(),
        int(tensor.storage_offset()),
        tuple(tensor.shape),
        tuple(tensor.stride()),
        tensor._version,
    )


@dataclass
class Call:
    """One call of one module: when it started and ended (one counter for both), what went in and out."""

    start: int
    input_key: TensorKey | None
    input_shape: tuple[int, ...] | None
    end: int = -1
    output_key: TensorKey | None = None
    output_shape: tuple[int, ...] | None = None
    # A list of tensors in (a DenseNet layer takes every map its block made so far): each one's key and shape.
    parts: tuple[tuple[TensorKey, tuple[int, ...]], ...] = ()

    def within(self, outer: Call) -> bool:
        """This call happened during ``outer``."""
        return outer.start < self.start and self.end <= outer.end


@dataclass
class Trace:
    """Every call of every module of one forward pass on a square ``input_size`` picture."""

    input_size: int
    modules: dict[str, nn.Module]
    calls: dict[str, list[Call]]
    children: dict[str, list[str]] = field(default_factory=dict)

    def ran_once(self, name: str) -> bool:
        return len(self.calls.get(name, [])) == 1

    def first(self, name: str) -> Call | None:
        calls = self.calls.get(name)
        return calls[0] if calls else None

    def callees(self, parent: str) -> list[str]:
        """``parent``'s children, with a child that is never called itself (a ModuleList) replaced by its own."""
        found: list[str] = []
        for child in self.children.get(parent, []):
            found += [child] if self.calls[child] else self.callees(child)
        return found

    def caller_of(self, name: str) -> str:
        """The nearest module above ``name`` that was called (a ModuleList's owner, not the list)."""
        parent = parent_of(name)
        while parent and not self.calls[parent]:
            parent = parent_of(parent)
        return parent

    def child_calls(self, parent: str, during: Call) -> list[tuple[str, Call]]:
        """Calls of ``parent``'s callees made during its call ``during``, in order."""
        found = [(child, call) for child in self.callees(parent) for call in self.calls[child] if call.within(during)]
        return sorted(found, key=lambda item: item[1].start)

    def chain(self, name: str) -> list[tuple[str, Call]] | None:
        """The children's calls when they form a chain from ``name``'s input to its output, else None.

        A chain: the first child gets the module's own input, each next child the tensor the
        one before returned, and the module returns what the last child returned.
        """
        call = self.first(name)
        if call is None or call.input_key is None:
            return None
        events = self.child_calls(name, call)
        previous: TensorKey | None = call.input_key
        for _child, event in events:
            if event.input_key is None or event.input_key != previous:
                return None
            previous = event.output_key
        return events if events and previous == call.output_key else None


def parent_of(name: str) -> str:
    """The dotted name of the module that holds ``name`` ("" for the network itself)."""
    return name.rpartition(".")[0]


def run_trace(network: nn.Module, input_size: int, channels: int = 3) -> Trace:
    """Run ``network`` once in evaluation mode on a random square picture and record every call.

    The network's training flags are restored afterwards and its hooks removed whatever happens.
    """
    modules = dict(network.named_modules())
    calls: dict[str, list[Call]] = {name: [] for name in modules}
    children: dict[str, list[str]] = {name: [] for name in modules}
    for name in modules:
        if name:
            children[parent_of(name)].append(name)
    counter = itertools.count()
    alive: list[torch.Tensor] = []

    def single_tensor(args: tuple[object, ...]) -> torch.Tensor | None:
        return args[0] if len(args) == 1 and isinstance(args[0], torch.Tensor) else None

    def tensor_list(args: tuple[object, ...]) -> tuple[tuple[TensorKey, tuple[int, ...]], ...]:
        if len(args) != 1 or not isinstance(args[0], list | tuple) or not args[0]:
            return ()
        if not all(isinstance(part, torch.Tensor) for part in args[0]):
            return ()
        return tuple((tensor_key(part), tuple(part.shape)) for part in args[0])

    def make_hooks(name: str):  # type: ignore[no-untyped-def]
        def before(_module: nn.Module, args: tuple[object, ...]) -> None:
            tensor = single_tensor(args)
            if tensor is not None:
                alive.append(tensor)
            key = None if tensor is None else tensor_key(tensor)
            shape = None if tensor is None else tuple(tensor.shape)
            calls[name].append(Call(next(counter), key, shape, parts=() if tensor is not None else tensor_list(args)))

        def after(_module: nn.Module, _args: tuple[object, ...], output: object) -> None:
            call = next(c for c in reversed(calls[name]) if c.end < 0)
            call.end = next(counter)
            if isinstance(output, torch.Tensor):
                alive.append(output)
                call.output_key, call.output_shape = tensor_key(output), tuple(output.shape)

        return before, after

    parameter = next(network.parameters(), None)
    dtype = parameter.dtype if parameter is not None and parameter.is_floating_point() else torch.float32
    device = parameter.device if parameter is not None else torch.device("cpu")
    generator = torch.Generator().manual_seed(0)
    modes = {module: module.training for module in modules.values()}
    hooks: list[Hook] = []
    for name, module in modules.items():
        before, after = make_hooks(name)
        hooks += [(module, "pre", before), (module, "post", after)]
    try:
        network.eval()
        # Not inference mode, even inside a caller's: its tensors have no version counter.
        with hooked(hooks), torch.inference_mode(False), torch.no_grad():
            picture = torch.rand(1, channels, input_size, input_size, generator=generator)
            network(picture.to(device=device, dtype=dtype))
    finally:
        for module, training in modes.items():
            module.training = training
        alive.clear()
    return Trace(input_size, modules, calls, children)

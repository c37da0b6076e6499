"""The one place that registers forward hooks.

``capture(model, names)`` is a context manager: inside it, every forward pass records the
named modules' outputs. Hooks are removed in ``finally`` whatever happens, outputs are
cloned (AlexNet's ReLUs are in-place, so the tensor a hook sees is overwritten by the next
layer otherwise), and leaving the block after a forward pass in which some hook saw nothing
raises, so a misspelt layer can never come back as an empty result.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

# A hook on one module: ("pre", fn(module, args)) runs before its forward, ("post",
# fn(module, args, output)) after it; a post hook that returns a value replaces the output.
Hook = tuple[nn.Module, str, Callable[..., object]]


class CaptureError(RuntimeError):
    """A requested layer does not exist or produced no output."""


def resolve_modules(model: nn.Module, names: Sequence[str]) -> dict[str, nn.Module]:
    """Map dotted ``named_modules()`` names to modules, failing on any unknown name."""
    modules = dict(model.named_modules())
    missing = [name for name in names if name not in modules or name == ""]
    if missing:
        raise CaptureError(f"unknown layer(s): {', '.join(missing)}")
    return {name: modules[name] for name in names}


@contextmanager
def _recording(
    model: nn.Module,
    names: Sequence[str],
    keep: Callable[[torch.Tensor], torch.Tensor],
    on_output: Callable[[str, torch.Tensor], None] | None = None,
) -> Iterator[dict[str, torch.Tensor]]:
    """Hooks that store ``keep(output)`` of each named module; removed in ``finally``.

    ``on_output(name, kept)`` runs inside the hook, the moment that module has its output,
    while the rest of the network is still to run.
    """
    targets = resolve_modules(model, names)
    outputs: dict[str, torch.Tensor] = {}
    handles: list[RemovableHandle] = []

    def make_hook(name: str):  # type: ignore[no-untyped-def]
        def hook(_module: nn.Module, _inputs: object, output: torch.Tensor) -> None:
            outputs[name] = keep(output)
            if on_output is not None:
                on_output(name, outputs[name])

        return hook

    try:
        for name, module in targets.items():
            handles.append(module.register_forward_hook(make_hook(name)))
        yield outputs
    finally:
        for handle in handles:
            handle.remove()
    silent = [name for name in names if name not in outputs]
    if silent:
        raise CaptureError(f"layer(s) produced no output: {', '.join(silent)}")


@contextmanager
def hooked(hooks: Iterable[Hook]) -> Iterator[None]:
    """Any forward hooks for the block, all removed in ``finally`` whatever happens.

    For structural measurements of a network (models/discovery: its call order, its
    footprints) that need more than the maps :func:`capture` records.
    """
    handles: list[RemovableHandle] = []
    try:
        for module, when, fn in hooks:
            if when == "pre":
                handles.append(module.register_forward_pre_hook(fn))
            elif when == "post":
                handles.append(module.register_forward_hook(fn))
            else:
                raise ValueError(f"a hook runs 'pre' or 'post', not {when!r}")
        yield
    finally:
        for handle in handles:
            handle.remove()


def _detached_copy(output: torch.Tensor) -> torch.Tensor:
    # Clone: the next in-place ReLU would otherwise rewrite what we keep. The copy is in the
    # usual (contiguous) layout whatever layout the network computes in (served networks
    # compute channels last), so the maps read the same as numpy arrays.
    return output.detach().clone(memory_format=torch.contiguous_format)


@contextmanager
def capture(
    model: nn.Module,
    names: Sequence[str],
    on_output: Callable[[str, torch.Tensor], None] | None = None,
) -> Iterator[dict[str, torch.Tensor]]:
    """Record the outputs of ``names`` during forward passes run inside the block.

    Yields a dict that fills up as the model runs: layer name -> cloned output tensor.
    ``on_output(name, output)``, if given, runs as soon as each named layer has its output
    (the clone kept in the dict): the caller can start on a map, e.g. encode it on another
    thread, while the layers after it still run.
    """
    with _recording(model, names, _detached_copy, on_output) as outputs:
        yield outputs


@contextmanager
def gradient_from(model: nn.Module, name: str) -> Iterator[dict[str, torch.Tensor]]:
    """Make autograd start at layer ``name``: everything before it runs without a graph.

    Inside the block the forward pass runs under ``no_grad`` until ``name`` produces its
    output; a forward hook there swaps that output for a fresh leaf that requires grad
    (yielded as ``leaf["activations"]``) and switches grad mode on for the rest of the pass.
    So a backward pass stops at the layer and never touches the (frozen) earlier layers.
    The hook returns a clone of the leaf, not the leaf itself: an in-place ReLU right after
    the layer (AlexNet's) would otherwise modify a leaf that requires grad, which autograd
    forbids. Grad mode and hooks are restored in ``finally``.
    """
    (module,) = resolve_modules(model, [name]).values()
    leaf: dict[str, torch.Tensor] = {}

    def hook(_module: nn.Module, _inputs: object, output: torch.Tensor) -> torch.Tensor:
        torch.set_grad_enabled(True)
        leaf["activations"] = output.detach().clone().requires_grad_()
        return leaf["activations"].clone()

    previous = torch.is_grad_enabled()
    handle = module.register_forward_hook(hook)
    torch.set_grad_enabled(False)
    try:
        yield leaf
    finally:
        handle.remove()
        torch.set_grad_enabled(previous)
    if "activations" not in leaf:
        raise CaptureError(f"layer produced no output: {name}")


class _GuidedReLU(torch.autograd.Function):
    """ReLU whose backward passes only positive gradients through positive inputs."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors  # type: ignore[attr-defined]
        return grad * (x > 0) * (grad > 0)


@contextmanager
def guided_relus(model: nn.Module) -> Iterator[None]:
    """Guided backpropagation (Springenberg et al.): every ``nn.ReLU`` becomes a guided ReLU.

    A forward hook on each ReLU returns the guided ReLU of the module's *input*, replacing
    its output. In-place ReLUs would have overwritten that input before the hook sees it,
    so they are switched to out-of-place for the duration and restored in ``finally``.
    """
    relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
    inplace = [m.inplace for m in relus]
    handles: list[RemovableHandle] = []

    def hook(_module: nn.Module, inputs: tuple[torch.Tensor, ...], _output: torch.Tensor) -> torch.Tensor:
        result: torch.Tensor = _GuidedReLU.apply(inputs[0])
        return result

    try:
        for relu in relus:
            relu.inplace = False
            handles.append(relu.register_forward_hook(hook))
        yield
    finally:
        for handle in handles:
            handle.remove()
        for relu, flag in zip(relus, inplace, strict=True):
            relu.inplace = flag


@contextmanager
def live_outputs(model: nn.Module, names: Sequence[str]) -> Iterator[dict[str, torch.Tensor]]:
    """Like :func:`capture`, but the recorded outputs stay in the autograd graph.

    For objectives that are differentiated back to the input (guided backpropagation,
    feature visualization). Outputs are cloned, which keeps the graph but protects them
    from a following in-place ReLU. Hooks are removed in ``finally``.
    """
    with _recording(model, names, torch.Tensor.clone) as outputs:
        yield outputs

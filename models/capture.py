"""The one place that registers forward hooks.

``capture(model, names)`` is a context manager: inside it, every forward pass records the
named modules' outputs. Hooks are removed in ``finally`` whatever happens, outputs are
cloned (AlexNet's ReLUs are in-place, so the tensor a hook sees is overwritten by the next
layer otherwise), and leaving the block after a forward pass in which some hook saw nothing
raises, so a misspelt layer can never come back as an empty result.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle


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
def capture(model: nn.Module, names: Sequence[str]) -> Iterator[dict[str, torch.Tensor]]:
    """Record the outputs of ``names`` during forward passes run inside the block.

    Yields a dict that fills up as the model runs: layer name -> cloned output tensor.
    """
    targets = resolve_modules(model, names)
    outputs: dict[str, torch.Tensor] = {}
    handles: list[RemovableHandle] = []

    def make_hook(name: str):  # type: ignore[no-untyped-def]
        def hook(_module: nn.Module, _inputs: object, output: torch.Tensor) -> None:
            # Clone: the next in-place ReLU would otherwise rewrite what we keep.
            outputs[name] = output.detach().clone()

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

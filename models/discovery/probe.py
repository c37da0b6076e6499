"""A piece of network's receptive field, measured: where the input gradient of its output units is non-zero.

Used where the geometry cannot be read off the modules (a residual block, a dense block, an
Inception block, anything with branches or functional code). The piece is copied with every
weight a positive random number divided by its fan-in and every batch norm an identity with
positive scale, and fed a positive random input: every path through convolutions and
ReLU-like activations then carries a strictly positive gradient, so the footprint of a unit
is exactly the set of input pixels some path reaches (random, not constant, weights keep
layer norms from cancelling it). The footprint's far edge holds only the few paths along a
kernel's rim, and their gradient shrinks geometrically with depth (1e-54 across DenseNet's
third dense block): so the output gradient of each convolution and linear layer is reset to
1 where it is non-zero on the way back, which keeps the pattern and bounds the range, and
the probe runs in float32 (again in float64 should a gradient still come near float32's
floor). Two
rewrites keep the footprint structural rather than data-dependent, through a
TorchFunctionMode that also catches the functional forms:

- max pooling becomes average pooling over the same window (a max routes its gradient to
  one pixel of the window; the window is what the unit depends on);
- global pooling (an adaptive pool to 1x1, a mean over both spatial axes) is detached:
  squeeze-and-excitation gates rescale a unit by a summary of the whole map, which would
  make every later unit "see" the whole picture. They modulate a unit; they do not move
  its patch.

Three units are back-propagated together, each from its own copy of the picture: units
(0, 0) and (1, 1) give the far edge of a unit's field and the stride, the last unit the near
edge, each read where the border cannot have cut it. A footprint that touches the border
may be cut off, so the picture grows until none does; one still cut off at twice the
first picture comes from global mixing (attention), and the answer is None.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from models.capture import Hook, hooked
from models.geometry import Geometry

MAX_PROBE_SIZE = 1024
# The smallest float32 gradient trusted not to hide an underflow next to it.
UNDERFLOW = 1e-30
# A footprint still cut off at this many times the first picture is global mixing, not a patch.
GROWTH = 2
_REDUCTIONS = {"mean", "sum", "amax", "amin", "max", "min", "logsumexp", "std", "var"}


@dataclass(frozen=True)
class Target:
    """Which tensor of the probed module to measure: a submodule's input or output at its n-th call."""

    name: str  # relative to the probed module; "" is the module itself
    call_index: int = 0
    where: str = "output"  # or "input"


class _Reached(Exception):
    """Raised by the target's hook to stop the forward pass once the target tensor is in hand."""


class _Faint(Exception):
    """A gradient came near float32's floor: the footprint may have lost pixels."""


class _TooSmall(Exception):
    """The probe picture gave the target map fewer than two units per side."""


def _average_pool(
    input: torch.Tensor,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> Any:
    """F.max_pool2d's window as an average (same output shape, gradient to every pixel of the window)."""
    if return_indices or dilation not in (1, (1, 1), [1, 1]):
        maximum: Any = F.max_pool2d  # its overloads hinge on return_indices being a literal
        return maximum(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)
    return F.avg_pool2d(input, kernel_size, stride, padding, ceil_mode, count_include_pad=True)


def _reduces_space(func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    """``func(*args)`` reduces a 4-D map over both spatial axes (a global pooling)."""
    name = getattr(func, "__name__", "")
    if not args or not isinstance(args[0], torch.Tensor) or args[0].dim() != 4:
        return False
    if name in ("adaptive_avg_pool2d", "adaptive_max_pool2d"):
        size = args[1] if len(args) > 1 else kwargs.get("output_size")
        return size in (1, (1, 1), [1, 1])
    if name not in _REDUCTIONS:
        return False
    dims = args[1] if len(args) > 1 else kwargs.get("dim")
    if dims is None:
        return True
    axes = {d % 4 for d in ((dims,) if isinstance(dims, int) else dims)}
    return {2, 3} <= axes


class _StructuralMode(TorchFunctionMode):
    """Max pools as average pools, global pools detached (see the module docstring)."""

    def __torch_function__(
        self, func: Callable[..., Any], types: Any, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None
    ) -> Any:
        kwargs = dict(kwargs or {})
        if func is F.max_pool2d:
            return _average_pool(*args, **kwargs)
        if func is F.adaptive_max_pool2d:
            kwargs.pop("return_indices", None)
            func = F.adaptive_avg_pool2d
        result = func(*args, **kwargs)
        if isinstance(result, torch.Tensor) and _reduces_space(func, args, kwargs):
            return result.detach()
        return result


class _Support(torch.autograd.Function):
    """Identity forward; backward, the gradient's support (1 where non-zero), a copy so in-place ops may follow."""

    @staticmethod
    def forward(ctx: Any, tensor: torch.Tensor) -> torch.Tensor:
        return tensor.clone()

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        return grad.ne(0).to(grad.dtype)


def _reset_gradient(_module: nn.Module, _args: object, output: object) -> object:
    if isinstance(output, torch.Tensor) and output.is_floating_point() and output.requires_grad:
        return _Support.apply(output)
    return output


def positive_copy(module: nn.Module, dtype: torch.dtype = torch.float32, seed: int = 0) -> nn.Module:
    """A copy of ``module`` with positive random weights, identity batch statistics and no
    parameter grads (its passes reset every weighted leaf's output gradient: ``_resets``)."""
    probe = copy.deepcopy(module).to(dtype).eval()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in probe.parameters():
            param.requires_grad_(False)
            if param.is_floating_point():
                param.copy_(torch.empty(param.shape, dtype=torch.float64).uniform_(0.5, 1.5, generator=generator))
                if param.dim() >= 2:
                    param.div_(param[0].numel())
        for name, buffer in probe.named_buffers():
            if name.endswith("running_mean"):
                buffer.zero_()
            elif name.endswith("running_var"):
                buffer.fill_(1.0)
    return probe


def _resets(probe: nn.Module) -> list[Hook]:
    """Every weighted leaf's output gradient reset to its support: weighted leaves
    (convolutions, linear layers) are where the gradient shrinks."""
    return [(leaf, "post", _reset_gradient) for leaf in probe.modules()
            if next(leaf.children(), None) is None and any(p.dim() >= 2 for p in leaf.parameters(recurse=False))]


def _capture(probe: nn.Module, target: Target, picture: torch.Tensor) -> torch.Tensor | None:
    """The target tensor of one forward pass (stopped as soon as it is produced)."""
    module = dict(probe.named_modules())[target.name]
    seen: list[torch.Tensor] = []
    count = [0]

    def keep(tensor: object) -> None:
        if count[0] == target.call_index:
            if isinstance(tensor, torch.Tensor):
                seen.append(tensor)
            raise _Reached
        count[0] += 1

    stop: Hook = ((module, "pre", lambda _m, args: keep(args[0] if args else None)) if target.where == "input"
                  else (module, "post", lambda _m, _args, output: keep(output)))
    try:
        with hooked([*_resets(probe), stop]), _StructuralMode():
            probe(picture)
    except _Reached:
        pass
    return seen[0] if seen else None


def _extent(mask: torch.Tensor) -> tuple[int, int] | None:
    """First and last index where a 1-D mask is set."""
    hits = torch.nonzero(mask).flatten()
    return None if hits.numel() == 0 else (int(hits[0]), int(hits[-1]))


def _axis(reach: torch.Tensor, dim: int, last: int, size: int) -> tuple[Geometry, bool] | None:
    """One axis's geometry from the footprints of units 0, 1 and ``last`` (picture items 0, 1, 2).

    Units 0 and 1 give the far edge and the stride, the last unit the near edge: each edge is
    read where the picture's border cannot have cut it, so the picture need only be about
    half the receptive field, not all of it.
    """
    spans = [_extent(reach[item].any(dim=0).any(dim=dim)) for item in range(3)]
    if any(span is None for span in spans):
        return None
    (_, far0), (_, far1), (near_last, _) = spans  # type: ignore[misc]
    stride = far1 - far0
    if stride < 1:
        return None
    near0 = near_last - last * stride
    touched = far1 == size - 1 or near_last == 0
    return Geometry(far0 - near0 + 1, stride, (near0 + far0) / 2), touched


def _footprints(probe: nn.Module, channels: int, size: int, target: Target) -> tuple[Geometry, bool] | None:
    """Geometry from one probe picture of side ``size``, and whether a footprint touched its border."""
    generator = torch.Generator().manual_seed(1)
    dtype = next((p.dtype for p in probe.parameters() if p.is_floating_point()), torch.float32)
    picture = torch.empty(3, channels, size, size, dtype=torch.float64).uniform_(0.5, 1.5, generator=generator)
    picture = picture.to(dtype).requires_grad_(True)
    # A copy goes in: an in-place first op (an exported program's relu_) may not write to a leaf.
    out = _capture(probe, target, picture.clone())
    if out is None or out.dim() != 4 or not out.requires_grad:
        return None
    height, width = out.shape[-2:]
    if height < 2 or width < 2:
        raise _TooSmall
    units = out[0, :, 0, 0].sum() + out[1, :, 1, 1].sum() + out[2, :, height - 1, width - 1].sum()
    (grad,) = torch.autograd.grad(units, picture)
    reach = grad.abs() > 0
    if dtype == torch.float32 and reach.any() and float(grad.abs()[reach].min()) < UNDERFLOW:
        raise _Faint
    rows, cols = _axis(reach, 1, height - 1, size), _axis(reach, 0, width - 1, size)
    if rows is None or cols is None or rows[0].stride != cols[0].stride:
        return None
    # One number per layer, as models/geometry.py: the wider axis (Inception's 1x7 and 7x1 even out).
    geometry = rows[0] if rows[0].receptive_field >= cols[0].receptive_field else cols[0]
    return geometry, rows[1] or cols[1]


@contextmanager
def one_thread() -> Iterator[None]:
    """Torch on one intra-op thread inside the block, the previous count restored after.

    Discovery's passes are one picture and small probes: split over threads they wait on each
    other, and with another process busy on one of this machine's two cores a 2-thread pass
    took 30 to 50 times as long as a 1-thread one (GoogLeNet at 224: 2.7 s against 0.08 s).
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def measure(module: nn.Module, channels: int, sizes: tuple[int, int], target: Target | None = None) -> Geometry | None:
    """The geometry from ``module``'s input to ``target`` (its own output by default), or None.

    ``sizes`` is (first guess, the size the module saw in the real pass): the probe starts at
    the guess, falls back to the real size if the module refuses a size (a transformer
    window that must divide the map), and doubles while a footprint touches the border; a
    footprint still cut off, or a module that refuses both sizes, gives None.
    """
    target = target or Target("")
    with one_thread(), torch.inference_mode(False):
        try:
            return _measure(positive_copy(module), channels, sizes, target)
        except _Faint:
            return _measure(positive_copy(module, torch.float64), channels, sizes, target)


def _measure(probe: nn.Module, channels: int, sizes: tuple[int, int], target: Target) -> Geometry | None:
    """:func:`measure` on a prepared copy: grow the picture until no footprint is cut off."""
    size, real = sizes
    limit = min(MAX_PROBE_SIZE, GROWTH * max(size, real))
    fell_back = size == real
    with torch.enable_grad():
        while size <= limit:
            try:
                result = _footprints(probe, channels, size, target)
            except _TooSmall:
                size *= 2
                continue
            except _Faint:
                raise
            except Exception:  # noqa: BLE001 - a refused size means "try the size it ran at", once
                if fell_back:
                    return None
                size, fell_back = real, True
                continue
            if result is None:
                return None
            geometry, touched = result
            if not touched:
                return geometry
            size *= 2
    return None  # still cut off: no patch to measure

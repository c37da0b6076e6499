"""A taught head as a small ``.safetensors`` file, and reading one back with every check.

The file holds four float32 tensors, ``weight`` [classes, units], ``bias`` [classes],
``mean`` and ``std`` [units], and in its metadata the format name, the class names (a
JSON list), the base model's id and the base layer. Reading never trusts the file: the
header is parsed by this module with a size cap before safetensors sees the bytes, the
names follow the same rules as a new session's (models/teach/names.py), the shapes must
agree with each other and with the base layer's width, the numbers must be finite and the
base model and layer must be ones the caller serves (``expected``).
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load, save

from models.teach.head import MIN_STD, Head
from models.teach.names import BadNames, check_names

FORMAT = "layerscope-teach-head/1"
TENSORS = ("weight", "bias", "mean", "std")
MAX_HEADER = 64 * 1024
# Where a base model and layer are served: their width in units, else None.
Expected = Callable[[str, str], int | None]


class BadHead(ValueError):
    """The file is not a head this server can use; the message says why."""


def head_bytes(head: Head) -> bytes:
    """``head`` as the bytes of a .safetensors file."""
    tensors = {"weight": head.weight, "bias": head.bias, "mean": head.mean, "std": head.std}
    metadata = {"format": FORMAT, "classes": json.dumps(list(head.classes)), "base": head.base, "layer": head.layer}
    return save({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in tensors.items()}, metadata=metadata)


def read_metadata(data: bytes) -> dict[str, str]:
    """The file's ``__metadata__``, read from its header (8-byte length, then JSON)."""
    if len(data) < 8:
        raise BadHead("This is not a .safetensors file: it is too short.")
    (size,) = struct.unpack("<Q", data[:8])
    if size > min(MAX_HEADER, len(data) - 8):
        raise BadHead("This is not a taught head: its header is too large or cut short.")
    try:
        header = json.loads(data[8 : 8 + size])
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise BadHead("This is not a .safetensors file: its header is not JSON.") from None
    metadata = header.get("__metadata__") if isinstance(header, dict) else None
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        raise BadHead(f"This is not a taught head: its metadata does not name the format {FORMAT}.")
    return {str(k): str(v) for k, v in metadata.items()}


def read_head(data: bytes, expected: Expected) -> Head:
    """The head in ``data``, or ``BadHead`` saying what is wrong with it."""
    metadata = read_metadata(data)
    classes = _classes(metadata.get("classes", ""))
    base, layer = metadata.get("base", ""), metadata.get("layer", "")
    units = expected(base, layer)
    if units is None:
        raise BadHead("The head was taught on a base model or layer this server does not serve.")
    try:
        tensors = load(data)
    except (SafetensorError, ValueError, TypeError):
        raise BadHead("The file's tensors cannot be read.") from None
    _check_tensors(tensors, len(classes), units)
    return Head(tuple(classes), base, layer, tensors["mean"], tensors["std"], tensors["weight"], tensors["bias"])


def _classes(raw: str) -> list[str]:
    try:
        names = json.loads(raw)
    except json.JSONDecodeError:
        raise BadHead("The head's class names are not a JSON list.") from None
    if not isinstance(names, list):
        raise BadHead("The head's class names are not a JSON list.")
    try:
        return check_names(names)
    except BadNames as exc:
        raise BadHead(f"The head's class names break a rule: {exc}") from None


def _check_tensors(tensors: dict[str, np.ndarray], classes: int, units: int) -> None:
    if sorted(tensors) != sorted(TENSORS):
        raise BadHead(f"The file must hold exactly the tensors {', '.join(TENSORS)}.")
    shapes = {"weight": (classes, units), "bias": (classes,), "mean": (units,), "std": (units,)}
    for name, shape in shapes.items():
        array = tensors[name]
        if array.dtype != np.float32 or array.shape != shape:
            raise BadHead(f"Tensor {name} must be float32 of shape {list(shape)} for this base layer and classes.")
        if not np.isfinite(array).all():
            raise BadHead(f"Tensor {name} holds values that are not finite.")
    if (tensors["std"] < MIN_STD).any():
        raise BadHead(f"Tensor std must be at least {MIN_STD} everywhere.")

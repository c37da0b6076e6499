"""The precomputed explanation files shipped with the tiny weights, and their readers.

``scripts/precompute_explain.py`` writes into ``models/weights/explain/``:

* ``index.json``: the sha256 of the weights they were computed for, and per layer the
  feature-visualization sprite and the top-patches sprite (file, columns, tile, values);
* ``featvis-<layer>.png``: unit c is tile c, row-major;
* ``patches-<layer>.jpg``: unit c's k patches fill row c (k columns);
* ``ood.npz``: the unfamiliar-input statistics (models.ood).

Everything is read lazily and only trusted when its sha256 matches the served weights,
so an untrained or retrained model never shows another model's pictures.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from models.explain.render import untile
from models.ood import OODStats
from models.zoo import verify

EXPLAIN_DIR_NAME = "explain"
INDEX_FILE = "index.json"
OOD_FILE = "ood.npz"
_LOCK = threading.Lock()


def file_sha256(path: str) -> str:
    """The served weights' sha256, hashed again only when the file changes."""
    return verify.file_sha256(path)


def explain_dir(weights_source: str | None) -> Path | None:
    """The folder of precomputed files next to a weights file (None without weights)."""
    return None if weights_source is None else Path(weights_source).parent / EXPLAIN_DIR_NAME


@lru_cache(maxsize=8)
def _index(folder: str, sha256: str) -> dict[str, Any] | None:
    path = Path(folder) / INDEX_FILE
    if not path.is_file():
        return None
    index: dict[str, Any] = json.loads(path.read_text())
    return index if index.get("weights_sha256") == sha256 else None


def index_for(weights_source: str | None) -> dict[str, Any] | None:
    folder = explain_dir(weights_source)
    if folder is None or weights_source is None:
        return None
    return _index(str(folder), file_sha256(weights_source))


@lru_cache(maxsize=32)
def _image(path: str) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def sprite(weights_source: str | None, kind: str, layer: str) -> tuple[np.ndarray, dict[str, Any]] | None:
    """A whole layer's sprite (``kind`` "featvis" or "patches") and its index entry."""
    index = index_for(weights_source)
    entry = (index or {}).get(kind, {}).get(layer)
    folder = explain_dir(weights_source)
    if entry is None or folder is None:
        return None
    with _LOCK:
        return _image(str(folder / entry["file"])), entry


@dataclass(frozen=True)
class SpriteFile:
    """A layer's sprite file as stored and how its tiles are laid out."""

    raw: bytes  # PNG or JPEG bytes, as shipped
    media_type: str
    columns: int
    tile: tuple[int, int]  # height, width
    units: int


def sprite_bytes(weights_source: str | None, kind: str, layer: str) -> SpriteFile | None:
    """A layer's sprite file (``kind`` "featvis" or "patches") as stored, without decoding."""
    index = index_for(weights_source)
    entry = (index or {}).get(kind, {}).get(layer)
    folder = explain_dir(weights_source)
    if entry is None or folder is None:
        return None
    media = "image/jpeg" if str(entry["file"]).endswith(".jpg") else "image/png"
    height, width = entry["tile"]
    raw = (folder / entry["file"]).read_bytes()
    return SpriteFile(raw, media, int(entry["columns"]), (int(height), int(width)), int(entry["units"]))


def unit_featvis(weights_source: str | None, layer: str, channel: int) -> np.ndarray | None:
    found = sprite(weights_source, "featvis", layer)
    if found is None or channel >= found[1]["units"]:
        return None
    image, meta = found
    return untile(image, (int(meta["tile"][0]), int(meta["tile"][1])), int(meta["columns"]), channel)


def unit_patches(
    weights_source: str | None, layer: str, channel: int
) -> tuple[np.ndarray, list[float]] | None:
    """Unit ``channel``'s strip of top patches (uint8 [tile, k * tile, 3]) and their activations."""
    found = sprite(weights_source, "patches", layer)
    if found is None or channel >= found[1]["units"]:
        return None
    image, meta = found
    h = int(meta["tile"][0])
    return image[channel * h : (channel + 1) * h], [float(v) for v in meta["values"][channel]]


@lru_cache(maxsize=4)
def _ood(path: str, sha256: str) -> OODStats | None:
    if not Path(path).is_file():
        return None
    stats = OODStats.load(Path(path))
    return stats if stats.weights_sha256 == sha256 else None


def ood_stats(weights_source: str | None) -> OODStats | None:
    folder = explain_dir(weights_source)
    if folder is None or weights_source is None:
        return None
    return _ood(str(folder / OOD_FILE), file_sha256(weights_source))

"""The network as it was during training: snapshots kept by the training job.

The model's metadata lists them (``ModelEntry.checkpoints``: name, step, fraction, file);
the files sit next to the final weights. Each is loaded the first time it is asked for and kept
(a few MB each), frozen and in eval mode like the registry's networks.
"""

from __future__ import annotations

import threading
from pathlib import Path

from torch import nn

from models.zoo.registry import ModelEntry, prepare_for_serving
from models.zoo.tinyweights import load_checkpoint

_CACHE: dict[tuple[str, str], nn.Module] = {}
_LOCK = threading.Lock()


class UnknownCheckpoint(ValueError):
    """The model has no checkpoint of that name (the message lists the known ones)."""


def checkpoint_names(entry: ModelEntry) -> list[str]:
    return [c.name for c in entry.checkpoints]


def resolve_checkpoint(entry: ModelEntry, raw: str | None) -> str | None:
    """A checkpoint name the model has, None (blank) for the served weights, else raise."""
    if raw is None or not raw.strip():
        return None
    names = checkpoint_names(entry)
    if raw not in names:
        raise UnknownCheckpoint(f"Unknown checkpoint; known: {', '.join(names) or 'none for this model'}.")
    return raw


def network_for(entry: ModelEntry, checkpoint: str | None) -> nn.Module:
    """The entry's network, or its snapshot ``checkpoint`` (loaded once, then cached)."""
    if checkpoint is None:
        assert entry.network is not None
        return entry.network
    record = entry.checkpoint(checkpoint)
    if record is None or entry.weights_source is None:
        raise UnknownCheckpoint(f"Unknown checkpoint; known: {', '.join(checkpoint_names(entry)) or 'none'}.")
    path = Path(entry.weights_source).parent / record.file
    key = (str(path), checkpoint)
    with _LOCK:
        network = _CACHE.get(key)
        if network is None:
            network = prepare_for_serving(load_checkpoint(path))
            _CACHE[key] = network
    return network

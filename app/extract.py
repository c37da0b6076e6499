"""Batch extraction for the CLI: images on disk -> raw activations in .npz files.

Uses the same decoding, preprocessing and capture as the server, so the arrays equal what
the API's ``format=npz`` returns for the same picture.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from tqdm import tqdm

from app.errors import ProblemError
from app.pipeline import Options, analyze
from app.settings import Settings
from models.zoo.registry import MODEL_IDS, load_registry


class ExtractRefused(ValueError):
    """The extraction cannot start (a model without weights, an unknown layer): says why and what to do."""


def extract_to(images: list[Path], model_id: str, layers: str | None, out: Path, settings: Settings) -> int:
    """Write each picture's activations; the number of pictures that could not be read is
    reported, and the status is 1 when there were any."""
    # A model of the configuration file is loaded with the file's others; a built-in one alone.
    built_in = model_id in MODEL_IDS
    entry = load_registry([model_id] if built_in else [], settings.alexnet_weights,
                          None if built_in else settings.config)[model_id]
    if not entry.available:
        raise ExtractRefused(f"{model_id} is not available: {entry.unavailable_reason} Run: {entry.how_to_get}")
    names = tuple(n.strip() for n in layers.split(",")) if layers else entry.default_layers
    unknown = [n for n in names if n not in entry.layers]
    if unknown:
        listed = "`layerscope models --json` lists every model's layers"
        raise ExtractRefused(f"unknown layer(s): {', '.join(unknown)} ({listed})")
    single_file = out.suffix == ".npz"
    if single_file and len(images) != 1:
        raise ExtractRefused("--out names one .npz file; give a directory for several images")
    if not single_file:
        out.mkdir(parents=True, exist_ok=True)
    options = Options(names, len(entry.classes), "npz")
    failures = 0
    for path in tqdm(images, desc=f"extract ({model_id})", unit="img"):
        try:
            result = analyze(entry, path.read_bytes(), options, settings.max_pixels)
        except (ProblemError, OSError) as exc:
            tqdm.write(f"{path}: {getattr(exc, 'detail', exc)}")
            failures += 1
            continue
        target = out if single_file else out / f"{path.stem}.npz"
        with np.load(io.BytesIO(result.body)) as arrays:
            np.savez(target, **{k: arrays[k] for k in arrays.files})
    return 1 if failures else 0

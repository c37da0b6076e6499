"""An activations request's answer: the cached one, else the three stages run on the engine.

Decoding and encoding run on the CPU workers, the forward pass on the inference thread,
batched with other pictures waiting for the same model, checkpoint and layers
(app/pipeline.py, app/inference.py).
"""

from __future__ import annotations

from app.inference import Engine, Stages, image_key
from app.pipeline import Options, Result, finish, infer, prepare
from models.zoo.registry import ModelEntry


async def activations_answer(
    engine: Engine, entry: ModelEntry, options: Options, data: bytes, max_pixels: int
) -> Result:
    """The response bytes for the upload ``data`` (a class uploading one sample gets the cached ones)."""
    key = (image_key(data), entry.id, options)
    cached = engine.cache.get(key)
    if isinstance(cached, Result):
        return cached
    result = await engine.run_staged(
        Stages(
            before=lambda: prepare(entry, data, max_pixels),
            batch_key=(entry.id, *options.batch_key),
            forward=lambda batch: infer(entry, options, batch, engine.submit),
            after=lambda prepared, inferred: finish(entry, options, prepared, inferred, engine.map),
        )
    )
    engine.cache.put(key, result)
    return result

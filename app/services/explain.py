"""Explanations beyond feature maps, computed on the inference thread: first-layer filters,
Grad-CAM and guided backpropagation (models/explain holds the methods)."""

from __future__ import annotations

from typing import Any

from app.encode import data_url, png_bytes
from app.errors import ProblemError
from app.imaging import decode_image
from models.explain.filters import NotDrawable, filter_atlas
from models.explain.gradcam import gradcam
from models.explain.guided import Objective, guided_backprop
from models.explain.render import heatmap_rgba, signed_image
from models.zoo.checkpoints import network_for
from models.zoo.registry import ModelEntry

FILTERS_NORMALIZATION = "per filter, symmetric around 0: grey is 0, the largest |weight| is black or full colour"


def model_input(entry: ModelEntry, data: bytes, max_pixels: int) -> Any:
    """The upload decoded and preprocessed for ``entry``: a [3, H, W] tensor."""
    assert entry.preprocess is not None
    return entry.preprocess(decode_image(data, max_pixels))


def filters_body(entry: ModelEntry, layer: str, checkpoint: str | None, scale: int) -> dict[str, Any]:
    """The kernels of ``layer`` (a convolution on the RGB input) as a picture atlas; else 422."""
    try:
        result = filter_atlas(network_for(entry, checkpoint), layer, scale)
    except NotDrawable:
        raise ProblemError(
            422, "not-drawable", f"Only a convolution on the RGB input can be drawn as pictures; {layer} is not."
        ) from None
    return {
        "model": entry.id,
        "layer": layer,
        "checkpoint": checkpoint,
        "shape": list(result.shape),
        "norms": [round(n, 5) for n in result.norms],
        "scale": result.scale,
        "normalization": FILTERS_NORMALIZATION,
        "atlas": {"png": data_url(png_bytes(result.atlas)), "columns": result.columns, "tile": list(result.tile)},
    }


def gradcam_body(
    entry: ModelEntry, layer: str, class_index: int | None, data: bytes, max_pixels: int
) -> dict[str, Any]:
    """Where the evidence for ``class_index`` (None: the top class) lies in the picture."""
    assert entry.network is not None
    tensor = model_input(entry, data, max_pixels)
    cam, index = gradcam(entry.network, tensor, layer, class_index)
    height, width = int(tensor.shape[1]), int(tensor.shape[2])
    return {
        "model": entry.id,
        "class_index": index,
        "label": entry.classes[index],
        "layer": layer,
        "map": {"shape": list(cam.shape), "values": [round(float(v), 5) for v in cam.ravel()]},
        "heatmap": data_url(png_bytes(heatmap_rgba(cam, height, width))),
        "heatmap_size": [height, width],
    }


def backprop_png(
    entry: ModelEntry, layer: str, channel: int, objective: Objective, data: bytes, max_pixels: int
) -> bytes:
    """Guided backpropagation from one unit to the pixels, as a PNG at the input's size."""
    assert entry.network is not None
    gradient = guided_backprop(entry.network, model_input(entry, data, max_pixels), layer, channel, objective)
    return png_bytes(signed_image(gradient))

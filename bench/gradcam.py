"""Rows 4: Grad-CAM, ours (models.explain.gradcam) against pytorch-grad-cam's GradCAM.

Same model, same picture, same layer (conv5 after its ReLU, ``features.11``) and the same
class (the top prediction). Agreement is checked by bringing our map (layer resolution,
divided by its peak) onto theirs (min-max scaled, resized to the input with OpenCV's bilinear
resize, scaled again): the largest difference is reported. Either side missing -> "pending"
(ours: a colleague's module not there yet) or "skipped" (theirs: not installed).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import torch

from bench.common import Config, Row, interleaved, judge, median_ms, registry
from bench.inprocess import bare_forward, prepared

LAYER = "features.11"
RATIO_TARGET = 2.0  # ours, as a multiple of the bare forward pass
SPEEDUP_TARGET = 4.0  # pytorch-grad-cam's time / ours
AGREEMENT = 1e-3


def ours() -> Callable[..., tuple[np.ndarray, int]] | None:
    try:
        from models.explain.gradcam import gradcam
    except ImportError:
        return None
    return gradcam


def as_theirs(cam: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Our map scaled and resized the way pytorch-grad-cam presents its own."""
    import cv2

    def scale(image: np.ndarray) -> np.ndarray:
        image = image - image.min()
        return image / (1e-7 + image.max())

    return scale(cv2.resize(scale(cam.astype(np.float32)), size))


def run(config: Config) -> list[Row]:
    rows: list[Row] = []
    mine = ours()
    for model in config.models:
        entry = registry()[model]
        assert entry.network is not None
        network, tensor = entry.network, prepared(entry)[2]
        with torch.inference_mode():
            index = int(network(tensor.unsqueeze(0))[0].argmax())
        timed: dict[str, Callable[[], object]] = {"bare forward": bare_forward(entry, tensor)}
        theirs: Any = None
        pending: list[Row] = []
        if mine is None:
            pending.append(Row("gradcam", model, "ours: models.explain.gradcam", target=f"<= {RATIO_TARGET}x",
                               status="pending", note="models/explain/gradcam.py not there yet"))
        else:
            timed["ours: models.explain.gradcam"] = partial(mine, network, tensor, LAYER, index)
        try:
            from pytorch_grad_cam import GradCAM
            from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
        except ImportError as exc:
            pending.append(Row("gradcam", model, "pytorch-grad-cam GradCAM", status="skipped",
                               note=f"not installed ({exc.name})"))
        else:
            # Built once, outside the timing: its hooks stay on the layer until released.
            theirs = GradCAM(model=network, target_layers=[dict(network.named_modules())[LAYER]])
            targets = [ClassifierOutputTarget(index)]
            # Our networks' weights are frozen (requires_grad False), so without an input that
            # requires grad there is no graph for it to differentiate.
            batch = tensor.unsqueeze(0).clone().requires_grad_(True)
            timed["pytorch-grad-cam GradCAM"] = partial(theirs, input_tensor=batch, targets=targets)
        try:
            times = interleaved(timed, config.reps)
            agreement = ""
            if mine is not None and theirs is not None:
                reference = theirs(input_tensor=batch, targets=targets)[0]
                cam, _ = mine(network, tensor, LAYER, index)
                difference = float(np.abs(as_theirs(cam, reference.shape[::-1]) - reference).max())
                verdict = "ok" if difference <= AGREEMENT else "DIFFERENT"
                agreement = f"same map: max abs diff {difference:.1e} ({verdict})"
        finally:
            if theirs is not None:
                theirs.activations_and_grads.release()
        bare = median_ms(times["bare forward"])
        med = {name: median_ms(samples) for name, samples in times.items()}
        for name, ms in med.items():
            row = Row("gradcam", model, name, ms=ms, best_ms=min(times[name]) * 1000, ratio=ms / bare)
            if name.startswith("ours"):
                row.target, row.status = f"<= {RATIO_TARGET}x", judge(ms / bare <= RATIO_TARGET)
                row.note = agreement
            rows.append(row)
        if "ours: models.explain.gradcam" in med and "pytorch-grad-cam GradCAM" in med:
            speedup = med["pytorch-grad-cam GradCAM"] / med["ours: models.explain.gradcam"]
            rows.append(Row("gradcam", model, "speed-up: pytorch-grad-cam / ours", value=speedup, unit="x",
                            target=f">= {SPEEDUP_TARGET}x", status=judge(speedup >= SPEEDUP_TARGET),
                            note=f"layer {LAYER}, class {index}"))
        rows.extend(pending)
    return rows

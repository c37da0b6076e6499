"""Rows 4: Grad-CAM, ours (models.explain.gradcam) against pytorch-grad-cam's GradCAM.

Same model, same picture, same layer (conv5 after its ReLU, ``features.11``) and the same
class (the top prediction). pytorch-grad-cam is timed twice: on the network as a user has it
(a copy whose weights require grad, as torchvision and ``nn.Module`` build them: autograd
also computes every weight's gradient, which GradCAM never reads, about 8x a forward pass on
AlexNet), and on our frozen network with an input that requires grad (the cheapest way to
call it). The speed-up target is judged against the first; the second is reported beside it.

Agreement is checked by bringing our map (layer resolution, divided by its peak) onto each of
theirs (min-max scaled, resized to the input with OpenCV's bilinear resize, scaled again):
the largest difference is reported. Either side missing -> "pending" (ours:
models.explain.gradcam not importable) or "skipped" (theirs: not installed).
"""

from __future__ import annotations

import copy
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
OURS = "ours: models.explain.gradcam"
AS_BUILT = "pytorch-grad-cam GradCAM (weights require grad, as built)"
FROZEN = "pytorch-grad-cam GradCAM (frozen weights, input requires grad)"


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
        as_built: Any = None
        pending: list[Row] = []
        if mine is None:
            pending.append(Row("gradcam", model, "ours: models.explain.gradcam", target=f"<= {RATIO_TARGET}x",
                               status="pending", note="models/explain/gradcam.py not there yet"))
        else:
            timed[OURS] = partial(mine, network, tensor, LAYER, index)
        try:
            from pytorch_grad_cam import GradCAM
            from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
        except ImportError as exc:
            pending.extend(Row("gradcam", model, name, status="skipped", note=f"not installed ({exc.name})")
                           for name in (AS_BUILT, FROZEN))
        else:
            # Built once, outside the timing: its hooks stay on the layer until released.
            theirs = GradCAM(model=network, target_layers=[dict(network.named_modules())[LAYER]])
            targets = [ClassifierOutputTarget(index)]
            # Our networks' weights are frozen (requires_grad False), so without an input that
            # requires grad there is no graph for it to differentiate.
            batch = tensor.unsqueeze(0).clone().requires_grad_(True)
            timed[FROZEN] = partial(theirs, input_tensor=batch, targets=targets)
            usual = copy.deepcopy(network).requires_grad_(True)
            as_built = GradCAM(model=usual, target_layers=[dict(usual.named_modules())[LAYER]])
            timed[AS_BUILT] = partial(as_built, input_tensor=tensor.unsqueeze(0), targets=targets)
        try:
            times = interleaved(timed, config.reps)
            agreement = ""
            if mine is not None and theirs is not None:
                cam, _ = mine(network, tensor, LAYER, index)
                references = [theirs(input_tensor=batch, targets=targets)[0],
                              as_built(input_tensor=tensor.unsqueeze(0), targets=targets)[0]]
                difference = max(float(np.abs(as_theirs(cam, r.shape[::-1]) - r).max()) for r in references)
                verdict = "ok" if difference <= AGREEMENT else "DIFFERENT"
                agreement = f"same map: max abs diff {difference:.1e} ({verdict})"
        finally:
            for cam in (theirs, as_built):
                if cam is not None:
                    cam.activations_and_grads.release()
        bare = median_ms(times["bare forward"])
        med = {name: median_ms(samples) for name, samples in times.items()}
        for name, ms in med.items():
            row = Row("gradcam", model, name, ms=ms, best_ms=min(times[name]) * 1000, ratio=ms / bare)
            if name.startswith("ours"):
                row.target, row.status = f"<= {RATIO_TARGET}x", judge(ms / bare <= RATIO_TARGET)
                row.note = agreement
            rows.append(row)
        if OURS in med and AS_BUILT in med:
            speedup = med[AS_BUILT] / med[OURS]
            rows.append(Row("gradcam", model, "speed-up: pytorch-grad-cam / ours", value=speedup, unit="x",
                            target=f">= {SPEEDUP_TARGET}x", status=judge(speedup >= SPEEDUP_TARGET),
                            note=f"layer {LAYER}, class {index}; weights requiring grad, as built"))
            rows.append(Row("gradcam", model, "speed-up: pytorch-grad-cam (frozen weights) / ours",
                            value=med[FROZEN] / med[OURS], unit="x", status="info",
                            note="its cheapest call: frozen weights, input requiring grad"))
        rows.extend(pending)
    return rows

"""The peer the http rows are compared with: the activations server a user writes in an afternoon.

FastAPI, torchvision's AlexNet with its own ImageNet transforms, ``create_feature_extractor``
for the conv layers after their ReLUs (the layers LayerScope serves by default), and every
channel of every layer as its own PNG, min-max scaled to 8 bits and base64-encoded in the
JSON. It is written the plain way on purpose (a sync route on FastAPI's thread pool, torch's
default threads, no batching, no caching) and must stay so: it measures what LayerScope
saves a user who would otherwise write this, so it is never tuned down, nor up.

Run by ``bench.naive`` as ``uvicorn bench.naive_server:app``; ``NAIVE_ALEXNET_WEIGHTS``
names the state dict to load (random weights in the bench: no download).
"""

from __future__ import annotations

import base64
import io
import os
from typing import Annotated, Any

import numpy as np
import torch
from fastapi import FastAPI, File, UploadFile
from PIL import Image
from torchvision.models import AlexNet_Weights, alexnet
from torchvision.models.feature_extraction import create_feature_extractor

LAYERS = {"features.1": "conv1", "features.4": "conv2", "features.7": "conv3", "features.9": "conv4",
          "features.11": "conv5"}

model = alexnet(weights=None)
model.load_state_dict(torch.load(os.environ["NAIVE_ALEXNET_WEIGHTS"], weights_only=True))
model.eval()
extractor = create_feature_extractor(model, return_nodes={**LAYERS, "classifier.6": "logits"})
transform = AlexNet_Weights.IMAGENET1K_V1.transforms()

app = FastAPI()


def channel_png(channel: np.ndarray) -> str:
    low, high = float(channel.min()), float(channel.max())
    scaled = (channel - low) / (high - low) if high > low else np.zeros_like(channel)
    buffer = io.BytesIO()
    Image.fromarray((scaled * 255).astype(np.uint8)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


@app.get("/readyz")
def ready() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/activations")
def activations(image: Annotated[UploadFile, File()]) -> dict[str, Any]:
    picture = Image.open(image.file).convert("RGB")
    batch = transform(picture).unsqueeze(0)
    with torch.no_grad():
        outputs = extractor(batch)
    probabilities = torch.softmax(outputs["logits"][0], dim=0)
    top = torch.topk(probabilities, 5)
    layers = []
    for name in LAYERS.values():
        maps = outputs[name][0].numpy()
        layers.append({"name": name, "shape": list(maps.shape), "channels": [channel_png(c) for c in maps]})
    return {
        "predictions": [
            {"index": int(i), "probability": float(p)} for p, i in zip(top.values, top.indices, strict=True)
        ],
        "layers": layers,
    }

"""Download AlexNet's ImageNet weights into torchvision's cache, only when a person asks.

torch.hub shows a progress bar and checks the file's sha256 prefix (torchvision names the
file after it), so a broken or tampered download is refused rather than served.
"""

from __future__ import annotations

from pathlib import Path

import torch

from models.zoo.registry import ALEXNET_WEIGHTS, alexnet_cache_path


def fetch_alexnet() -> Path:
    target = alexnet_cache_path()
    if target.exists():
        return target
    torch.hub.load_state_dict_from_url(
        ALEXNET_WEIGHTS.url, progress=True, check_hash=True, map_location="cpu"
    )
    return target

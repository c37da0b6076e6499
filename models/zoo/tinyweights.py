"""Load and save the embedded "tiny" MiniAlexNet: safetensors weights + a metadata JSON.

``load_tiny`` is the one reader (the measuring jobs use it; the registry through
``load_served``, which types the metadata): it verifies the weights' sha256 against the
metadata before trusting them and always returns a float32 model in eval mode, whatever
dtype was shipped.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from models.nets import MiniAlexNet, NetConfig
from models.zoo.meta import ModelMeta, TaughtParts

WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"
WEIGHTS_FILE = "tiny.safetensors"
META_FILE = "tiny.json"
DISSECTION_FILE = "tiny-dissection.json"  # the dissect job's unit labels, next to the weights
META_KEYS = (
    "classes", "input_size", "mean", "std", "net", "dtype", "train_config", "seed",
    "metrics", "checkpoints", "sha256", "trained_on",
)


class WeightsError(RuntimeError):
    """The shipped weights are missing, altered or do not match their metadata."""


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_meta(weights_dir: Path | str = WEIGHTS_DIR) -> dict[str, Any]:
    meta: dict[str, Any] = json.loads((Path(weights_dir) / META_FILE).read_text())
    return meta


def write_meta(meta: dict[str, Any], weights_dir: Path | str = WEIGHTS_DIR) -> None:
    (Path(weights_dir) / META_FILE).write_text(json.dumps(meta, indent=1) + "\n")


def taught_parts(train_config: dict[str, Any]) -> dict[str, Any] | None:
    """The second training task about the parts a recipe had besides the classes
    ({"task": "where" or "names", "layer": 1-5}, and "units": {part type: unit} when each
    part type was read from a unit given to it), or None when it learnt from class labels alone."""
    taught = TaughtParts.from_train_config(train_config)
    return None if taught is None else taught.to_dict()


def state_to_model(state: dict[str, torch.Tensor], config: NetConfig) -> MiniAlexNet:
    model = MiniAlexNet(config)
    model.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    return model.eval()


def load_tiny(weights_dir: Path | str = WEIGHTS_DIR) -> tuple[MiniAlexNet, dict[str, Any]]:
    """Read tiny.json + tiny.safetensors into a float32 MiniAlexNet (eval mode)."""
    weights_dir = Path(weights_dir)
    path = weights_dir / WEIGHTS_FILE
    if not path.is_file():
        raise WeightsError(f"missing weights file {path}")
    meta = read_meta(weights_dir)
    digest = sha256_file(path)
    if digest != meta.get("sha256"):
        raise WeightsError(f"sha256 of {path} is {digest}, metadata says {meta.get('sha256')}")
    model = state_to_model(load_file(str(path)), NetConfig.from_dict(meta["net"]))
    return model, meta


def load_served(weights_dir: Path | str = WEIGHTS_DIR) -> tuple[MiniAlexNet, ModelMeta]:
    """``load_tiny`` with the metadata typed, as the registry serves it."""
    model, meta = load_tiny(weights_dir)
    return model, ModelMeta.from_dict(meta)


def save_model(model: torch.nn.Module, path: Path, dtype: torch.dtype = torch.float32,
               metadata: dict[str, str] | None = None) -> str:
    """Write a state dict as safetensors (no pickle); returns its sha256."""
    state = {k: v.detach().to(dtype).contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(path), metadata=metadata)
    return sha256_file(path)


def load_checkpoint(path: Path | str) -> MiniAlexNet:
    """A training snapshot (tiny-ckpt-*.safetensors): it carries its NetConfig as metadata."""
    with safe_open(str(path), framework="pt") as f:
        header = f.metadata() or {}
    config = NetConfig.from_dict(json.loads(header["net"]))
    return state_to_model(load_file(str(path)), config)

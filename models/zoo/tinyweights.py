"""Load and save the embedded "tiny" MiniAlexNet: safetensors weights + a metadata JSON.

``load_tiny`` is the reader the measuring jobs use: it refuses weights whose sha256 differs
from the metadata's. ``load_served`` is the registry's: it types the metadata and serves such
weights anyway, with the check that says they are unverified. Both return a float32 model in
eval mode, whatever dtype was shipped.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from models.nets import MiniAlexNet, NetConfig
from models.zoo import verify
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
    """The file's sha256, remembered while the file is unchanged (models.zoo.verify)."""
    return verify.file_sha256(path)


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


def _check(weights_dir: Path) -> tuple[Path, dict[str, Any], verify.WeightsCheck]:
    """The weights file, tiny.json, and the file checked against the sha256 tiny.json records."""
    path = weights_dir / WEIGHTS_FILE
    if not path.is_file():
        raise WeightsError(f"missing weights file {path}")
    meta = read_meta(weights_dir)
    return path, meta, verify.check_recorded(path, meta.get("sha256"))


def load_tiny(weights_dir: Path | str = WEIGHTS_DIR) -> tuple[MiniAlexNet, dict[str, Any]]:
    """Read tiny.json + tiny.safetensors into a float32 MiniAlexNet (eval mode)."""
    path, meta, check = _check(Path(weights_dir))
    if not check.verified:
        raise WeightsError(f"sha256 of {path} is {check.sha256}, metadata says {meta.get('sha256')}")
    return state_to_model(load_file(str(path)), NetConfig.from_dict(meta["net"])), meta


def frozen_for_assets(weights_dir: Path) -> tuple[MiniAlexNet, dict[str, Any], str, Path]:
    """What a job making explanation assets starts from: the shipped network with frozen
    weights, its metadata, the sha256 its assets are made for, and their folder (created)."""
    net, meta = load_tiny(weights_dir)
    for param in net.parameters():
        param.requires_grad_(False)
    out = weights_dir / "explain"
    out.mkdir(exist_ok=True)
    return net, meta, sha256_file(weights_dir / WEIGHTS_FILE), out


def load_served(weights_dir: Path | str = WEIGHTS_DIR) -> tuple[MiniAlexNet, ModelMeta, verify.WeightsCheck]:
    """The network, its typed metadata and the sha256 check; weights that fail the check
    load too (the registry serves them as unverified)."""
    path, meta, check = _check(Path(weights_dir))
    model = state_to_model(load_file(str(path)), NetConfig.from_dict(meta["net"]))
    return model, ModelMeta.from_dict(meta), check


def save_model(model: torch.nn.Module, path: Path, dtype: torch.dtype = torch.float32,
               metadata: dict[str, str] | None = None) -> str:
    """Write a state dict as safetensors (no pickle); returns its sha256."""
    state = {k: v.detach().to(dtype).contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(path), metadata=metadata)
    return verify.sha256_of(path)


def load_checkpoint(path: Path | str) -> MiniAlexNet:
    """A training snapshot (tiny-ckpt-*.safetensors): it carries its NetConfig as metadata."""
    with safe_open(str(path), framework="pt") as f:
        header = f.metadata() or {}
    config = NetConfig.from_dict(json.loads(header["net"]))
    return state_to_model(load_file(str(path)), config)

"""Where AlexNet's weights come from, and honesty about what is not available."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from torchvision.models import AlexNet_Weights

from models.zoo import tinyweights
from models.zoo.registry import load_alexnet, load_registry, tiny_entry
from models.zoo.torchvision_zoo import weights_file


def test_explicit_file_wins(alexnet_weights: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    entry = load_alexnet(alexnet_weights)
    assert entry.available and entry.weights_source == str(alexnet_weights)
    expected = torch.load(alexnet_weights, weights_only=True)
    assert entry.network is not None
    assert torch.equal(entry.network.state_dict()["features.0.weight"], expected["features.0.weight"])
    assert entry.classes == AlexNet_Weights.IMAGENET1K_V1.meta["categories"]
    assert len(entry.classes) == 1000


def test_torchvision_cache_is_found(alexnet_weights: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    cached = weights_file("alexnet")
    assert cached == tmp_path / "hub" / "checkpoints" / "alexnet-owt-7be5be79.pth"
    cached.parent.mkdir(parents=True)
    shutil.copy(alexnet_weights, cached)
    entry = load_alexnet(None)
    assert entry.available and entry.weights_source == str(cached)


def test_safetensors_file_loads(alexnet_weights: Path, tmp_path: Path) -> None:
    state = torch.load(alexnet_weights, weights_only=True)
    path = tmp_path / "alexnet.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    assert load_alexnet(path).available


def test_missing_weights_are_reported_with_the_fetch_command(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    entry = load_alexnet(None)
    assert not entry.available and entry.network is None
    assert entry.how_to_get == "layerscope fetch-weights alexnet"
    assert str(tmp_path) in (entry.unavailable_reason or "")
    summary = entry.summary()
    assert summary["available"] is False and summary["how_to_get"] == entry.how_to_get


def test_broken_weights_file_is_unavailable_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "broken.pth"
    path.write_bytes(b"not a checkpoint")
    entry = load_alexnet(path)
    assert not entry.available and "could not be loaded" in (entry.unavailable_reason or "")


def test_tiny_is_always_available_and_says_whether_it_is_trained() -> None:
    entry = tiny_entry()
    assert entry.available and entry.network is not None
    if not entry.trained:
        assert "random" in entry.trained_on
    assert len(entry.classes) == dict(entry.network.named_modules())["classifier.6"].out_features


def test_the_listing_says_whether_the_parts_were_taught(tmp_path: Path) -> None:
    taught_parts = tinyweights.taught_parts
    assert taught_parts({}) is None and taught_parts({"parts_task": "where", "parts_weight": 0.0}) is None
    assert taught_parts({"parts_task": "where", "parts_weight": 1.0, "parts_layer": 3}) == {"task": "where", "layer": 3}
    # The first parts-task runs had only the naming task and no parts_task field.
    assert taught_parts({"parts_weight": 1.0}) == {"task": "names", "layer": 4}
    assigned = taught_parts({"parts_task": "where", "parts_weight": 1.0, "parts_layer": 4, "parts_readout": "assigned"})
    assert assigned is not None and assigned["layer"] == 4
    assert list(assigned["units"].items())[:3] == [("wheel", 0), ("window", 1), ("door", 2)]
    assert sorted(assigned["units"].values()) == list(range(12))
    shutil.copytree(tinyweights.WEIGHTS_DIR, tmp_path / "w")
    meta = tinyweights.read_meta(tmp_path / "w")
    meta["train_config"] |= {"parts_task": "where", "parts_weight": 1.0, "parts_layer": 4, "parts_readout": "linear"}
    tinyweights.write_meta(meta, tmp_path / "w")
    assert tiny_entry(tmp_path / "w").summary()["taught_parts"] == {"task": "where", "layer": 4}


def test_unknown_model_id() -> None:
    with pytest.raises(ValueError, match="unknown model"):
        load_registry(["resnet"])


def test_served_networks_are_frozen_in_eval_mode_and_channels_last_and_compute_the_same(
    alexnet_weights: Path,
) -> None:
    from torchvision.models import alexnet

    entry = load_alexnet(alexnet_weights)
    assert entry.network is not None and not entry.network.training
    assert not any(p.requires_grad for p in entry.network.parameters())
    convs = [m for m in entry.network.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(m.weight.is_contiguous(memory_format=torch.channels_last) for m in convs)
    # The same weights in torchvision's own network, usual layout: the same answer to float rounding.
    plain = alexnet()
    plain.load_state_dict(torch.load(alexnet_weights, weights_only=True))
    x = torch.randn(2, 3, 224, 224)
    with torch.inference_mode():
        torch.testing.assert_close(entry.network(x), plain.eval()(x), rtol=1e-5, atol=1e-5)

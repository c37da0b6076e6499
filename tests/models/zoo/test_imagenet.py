"""An entry for any torchvision classifier: verified, unverified, missing and unusable weights files."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import pytest
import torch
from torchvision.models import get_model

from models.zoo import imagenet
from models.zoo import torchvision_zoo as zoo


@pytest.fixture
def torch_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    return tmp_path


def test_a_file_with_the_published_digest_is_served_as_imagenet(
    torch_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    torch.manual_seed(2)
    path = torch_home / "mobilenet_v3_small.pth"
    torch.save(get_model("mobilenet_v3_small", weights=None).state_dict(), path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    published = path.with_name(f"mobilenet_v3_small-{digest[:8]}.pth")
    path.rename(published)
    real = zoo.spec("mobilenet_v3_small")
    # The published name is the one that carries this file's digest prefix, as torchvision's names do theirs.
    monkeypatch.setattr(imagenet.zoo, "spec", lambda name: dataclasses.replace(
        real, url=f"https://example.invalid/models/{published.name}", weights_file=published))
    entry = imagenet.zoo_entry("mobilenet_v3_small")
    assert entry.available and entry.weights is not None and entry.weights.verified
    assert entry.weights.sha256 == digest and entry.weights_source == str(published)
    assert entry.title == "MobileNet_V3_Small (ImageNet)" and entry.trained_on.startswith("ImageNet-1k")
    assert entry.accuracy_percent == real.top1 and entry.metrics == {"imagenet_top1": real.top1}
    assert entry.group == "imagenet" and entry.layout == "discovered" and entry.how_to_get is None
    assert entry.filters_layer == "features.0.0" and entry.cam_layer == entry.default_layers[-1]


def test_random_weights_under_torchvisions_name_are_served_unverified(torch_home: Path) -> None:
    torch.manual_seed(3)
    path = zoo.weights_file("squeezenet1_1")
    path.parent.mkdir(parents=True)
    torch.save(get_model("squeezenet1_1", weights=None).state_dict(), path)
    entry = imagenet.zoo_entry("squeezenet1_1")
    assert entry.available and entry.weights is not None and not entry.weights.verified
    assert entry.title == "SqueezeNet1_1 (unverified weights)" and entry.metrics == {}
    assert "ImageNet" not in entry.trained_on and entry.accuracy_percent is None


def test_a_missing_or_unusable_file_is_listed_with_its_reason_and_fetch_command(torch_home: Path) -> None:
    missing = imagenet.zoo_entry("resnet18")
    assert not missing.available and missing.network is None
    assert missing.how_to_get == "layerscope fetch-weights resnet18"
    assert str(zoo.weights_file("resnet18")) in (missing.unavailable_reason or "")
    path = zoo.weights_file("resnet18")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a state dict")
    broken = imagenet.zoo_entry("resnet18")
    assert not broken.available and broken.how_to_get == "layerscope fetch-weights resnet18"
    assert "could not be read as weights" in (broken.unavailable_reason or "")
    torch.save(get_model("resnet34", weights=None).state_dict(), path)  # another network's weights
    wrong = imagenet.zoo_entry("resnet18")
    assert not wrong.available and "does not fit resnet18" in (wrong.unavailable_reason or "")


def test_a_vision_transformers_card_says_its_token_layers_are_not_drawn(torch_home: Path) -> None:
    # torchvision's transformers are the builders of its vision_transformer, swin_transformer and
    # maxvit modules; every convolutional family is the rest.
    transformers = [name for name in zoo.classification_models() if name.startswith(("vit_", "swin_", "maxvit"))]
    assert [name for name in zoo.classification_models() if zoo.spec(name).tokens] == transformers
    for name in ("vit_b_16", "swin_t", "maxvit_t"):
        assert "does not draw or serve as maps" in imagenet.zoo_entry(name).description, name
    for name in ("resnet18", "convnext_tiny", "efficientnet_b0"):
        assert "tokens" not in imagenet.zoo_entry(name).description, name

"""torchvision's ImageNet models through the API, against plain torchvision forward passes.

Random weights are saved under torchvision's own file names in a temporary TORCH_HOME and
served through the real loading path (the registry, torchvision's builders, our reader);
downloading fails for the whole module. The reference for every map is the saved network
itself, run on ``weights.transforms()`` of the picture, with a hook on the module of the
same name; predictions are the softmax of its logits.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torchvision.models
from fastapi.testclient import TestClient
from PIL import Image
from torch import nn
from torchvision.models import get_model, get_model_weights

from app.main import create_app
from models.capture import Hook, hooked
from models.zoo import torchvision_zoo as zoo
from tests.app.conftest import make_settings
from tests.app.test_api import decode_atlas, decode_sent, post

# Four families the issue names and two more: a dense network and a compound-scaled one.
ZOO = ("resnet18", "vgg16", "mobilenet_v3_small", "convnext_tiny", "efficientnet_b0", "densenet121")
# VGG-16 worked out by hand: a 3x3 convolution adds 2 x the stride so far, a 2x2 pooling of
# stride 2 adds 1 x the stride and doubles it; offsets are (field - 1) / 2 - padding so far.
VGG16_DEFAULT = [  # (module, stage, receptive field, stride, offset); conv1_1 left out, see below
    ("features.6", "edges", 10, 2, 0.5),
    ("features.13", "textures", 32, 4, 1.5), ("features.18", "parts", 60, 8, 3.5),
    ("features.22", "parts", 92, 8, 3.5), ("features.29", "objects", 196, 16, 7.5),
]
# The bench's models whose default answer stays under 1 MB. Not VGG-16 (its conv2_2 alone
# holds 1.6 million values: no view with an edges band is small) nor DenseNet-121 (its first
# dense block, the view's only edges layer once the stem is dropped, holds 0.8 million).
VGG16_POOLS = [("features.4", 6, 2), ("features.9", 16, 4), ("features.16", 44, 8), ("features.23", 100, 16),
               ("features.30", 212, 32)]


def _no_download(*_args: object, **_kwargs: object) -> None:
    raise AssertionError("a test tried to download weights")


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, nn.Module]]:
    """The reference networks, saved under torchvision's file names in a fresh TORCH_HOME."""
    home = tmp_path_factory.mktemp("torch-home")
    networks = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TORCH_HOME", str(home))
        patch.setattr(torch.hub, "_hub_dir", None)
        patch.setattr(torch.hub, "load_state_dict_from_url", _no_download)
        patch.setattr(torchvision.models._api, "load_state_dict_from_url", _no_download)
        for seed, name in enumerate(ZOO):
            torch.manual_seed(seed)
            network = get_model(name, weights=None).eval()
            path = zoo.weights_file(name)
            path.parent.mkdir(parents=True, exist_ok=True)
            torch.save(network.state_dict(), path)
            networks[name] = network
        yield networks


@pytest.fixture(scope="module")
def client(saved: dict[str, nn.Module]) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings(models=",".join(("tiny", *ZOO))))) as c:
        yield c


def reference(network: nn.Module, name: str, data: bytes, layers: list[str]) -> tuple[dict[str, np.ndarray], Any]:
    """The maps of ``layers`` and the logits of a plain forward pass on ``weights.transforms()``."""
    picture = get_model_weights(name).DEFAULT.transforms()(Image.open(io.BytesIO(data)).convert("RGB"))[None]
    modules = dict(network.named_modules())
    outputs: dict[str, np.ndarray] = {}

    def keep(layer: str):
        def hook(_module: nn.Module, _args: object, output: torch.Tensor) -> None:
            outputs[layer] = output[0].detach().numpy().astype(np.float64)
        return hook

    hooks: list[Hook] = [(modules[layer], "post", keep(layer)) for layer in layers]
    with torch.no_grad(), hooked(hooks):
        logits = network(picture)[0].double()
    return outputs, logits


@pytest.mark.parametrize("name", ZOO)
def test_every_default_map_and_the_predictions_match_plain_torchvision(
    name: str, client: TestClient, saved: dict[str, nn.Module], make_image
) -> None:
    data = make_image(320, 240, seed=11)
    detail = client.get(f"/api/v1/models/{name}").json()
    assert detail["available"] and detail["group"] == "imagenet" and detail["weights"]["verified"] is False
    response = post(client, name, data)
    assert response.status_code == 200, response.text
    body = response.json()
    names = [layer["name"] for layer in body["layers"]]
    assert names == detail["default_layers"] and 5 <= len(names) <= 8
    assert len(response.content) < 1_000_000
    maps, logits = reference(saved[name], name, data, names)
    for layer in body["layers"]:
        expected = maps[layer["name"]]
        assert layer["shape"] == list(expected.shape)
        sent, decoded = decode_sent(layer)
        if layer["name"] in detail["view_maps"]:
            assert len(sent) == detail["view_maps"][layer["name"]] < expected.shape[0]
            assert_most_active(sent, expected)
        else:
            assert sent == list(range(expected.shape[0]))
        bound = (np.array(layer["hi"]) - np.array(layer["lo"]))[sent, None, None] / 510
        error = np.abs(decoded - expected[sent])
        assert np.all(error <= bound + 1e-5 * (1 + np.abs(expected[sent]))), layer["name"]
        # The bounds and statistics cover every channel, the maps left out too.
        flat = expected.reshape(expected.shape[0], -1)
        np.testing.assert_allclose(layer["lo"], flat.min(1), atol=1e-5 * (1 + np.abs(flat).max()))
        np.testing.assert_allclose(layer["channels"]["mean"], flat.mean(1), rtol=1e-4, atol=1e-5)
    probabilities = torch.softmax(logits, 0).numpy()
    got = body["predictions"]
    assert np.allclose([p["probability"] for p in got], probabilities[[p["index"] for p in got]], atol=1e-6)
    assert min(p["probability"] for p in got) >= np.sort(probabilities)[-5] - 1e-6
    labels = get_model_weights(name).DEFAULT.meta["categories"]
    assert all(p["label"] == labels[p["index"]] for p in got)


def assert_most_active(sent: list[int], maps: np.ndarray) -> None:
    """``sent`` holds the strongest channels of ``maps`` by mean (ties to float rounding aside)."""
    means = maps.reshape(maps.shape[0], -1).mean(1)
    left_out = np.delete(means, sent)
    assert len(set(sent)) == len(sent)
    if left_out.size:
        assert means[sent].min() >= left_out.max() - 1e-5 * (1 + np.abs(means).max())
    assert np.all(np.diff(means[sent]) <= 1e-5 * (1 + np.abs(means).max()))  # strongest first


def test_a_wide_layer_asked_for_by_name_carries_all_its_maps(
    client: TestClient, saved: dict[str, nn.Module], make_image
) -> None:
    detail = client.get("/api/v1/models/vgg16").json()
    assert detail["view_maps"]["features.6"] == 8  # the default view carries conv2_1's eight strongest
    data = make_image(240, 260, "JPEG", seed=15)
    response = post(client, "vgg16", data, layers="features.6,features.1")
    assert response.status_code == 200, response.text
    maps, _ = reference(saved["vgg16"], "vgg16", data, ["features.6", "features.1"])
    for layer in response.json()["layers"]:
        expected = maps[layer["name"]]
        bound = (np.array(layer["hi"]) - np.array(layer["lo"]))[:, None, None] / 510
        assert np.all(np.abs(decode_atlas(layer) - expected) <= bound + 1e-5 * (1 + np.abs(expected))), layer["name"]


@pytest.mark.parametrize("name", ["resnet18", "convnext_tiny"])
def test_npz_maps_equal_the_reference_within_1e5(
    name: str, client: TestClient, saved: dict[str, nn.Module], make_image
) -> None:
    data = make_image(256, 300, "JPEG", seed=12)
    layers = client.get(f"/api/v1/models/{name}").json()["default_layers"]
    response = post(client, name, data, format="npz")
    assert response.status_code == 200
    arrays = np.load(io.BytesIO(response.content))
    maps, logits = reference(saved[name], name, data, layers)
    # 1e-5 of the layer's own scale: the served network runs channels-last, whose float32
    # sums round differently (1.1e-5 on one of ResNet-18's maps that reach 5).
    for layer in layers:
        scale = max(1.0, float(np.abs(maps[layer]).max()))
        np.testing.assert_allclose(arrays[layer], maps[layer], rtol=0, atol=1e-5 * scale, err_msg=layer)
    scale = max(1.0, float(logits.abs().max()))
    np.testing.assert_allclose(arrays["logits"], logits.numpy(), rtol=0, atol=1e-5 * scale)
    np.testing.assert_allclose(arrays["probabilities"], torch.softmax(logits, 0).numpy(), atol=1e-6)


def test_vgg16_layers_stages_fields_and_strides_are_the_hand_derived_ones(client: TestClient) -> None:
    detail = client.get("/api/v1/models/vgg16").json()
    shown = [(la["name"], la["stage"], la["receptive_field"], la["stride"], la["offset"]) for la in detail["layers"]]
    assert shown == VGG16_DEFAULT
    every = {layer["name"]: layer for layer in detail["all_layers"]}
    # conv1_1 after its ReLU: 64 full-size maps, more values than the whole rest of the view
    # (even at the eight maps a wide layer keeps), so the served view drops it
    # (models/zoo/entry.py) and the edges band keeps conv2_1.
    conv1_1 = every["features.1"]
    assert (conv1_1["stage"], conv1_1["receptive_field"], conv1_1["stride"], conv1_1["offset"]) == ("edges", 3, 1, 0.0)
    for pool, field, stride in VGG16_POOLS:
        assert (every[pool]["receptive_field"], every[pool]["stride"]) == (field, stride), pool
    # Each convolution before its ReLU sees what the ReLU sees; the classifier sees the whole crop.
    assert (every["features.0"]["receptive_field"], every["features.28"]["receptive_field"]) == (3, 196)
    assert every["classifier.6"]["stage"] == "classes" and every["classifier.6"]["receptive_field"] == 224
    assert detail["cam_layer"] == "features.29" and detail["filters_layer"] == "features.0"


def test_resnet18_gradcam_equals_an_autograd_reference(
    client: TestClient, saved: dict[str, nn.Module], make_image
) -> None:
    data = make_image(300, 300, seed=13)
    response = client.post("/api/v1/models/resnet18/gradcam", files={"image": ("a.png", data, "image/png")})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["layer"] == "layer4.1"  # the last spatial layer of the default view
    network = saved["resnet18"]
    assert isinstance(network, torchvision.models.ResNet)
    picture = get_model_weights("resnet18").DEFAULT.transforms()(Image.open(io.BytesIO(data)).convert("RGB"))[None]
    kept: list[torch.Tensor] = []
    with hooked([(network.layer4[1], "post", lambda _m, _a, out: kept.append(out))]):
        logits = network(picture)
    top = int(logits[0].argmax())
    (grad,) = torch.autograd.grad(logits[0, top], kept[0])
    cam = torch.relu((grad[0].mean(dim=(1, 2))[:, None, None] * kept[0][0]).sum(0)).detach()
    cam = cam / cam.max()
    assert body["class_index"] == top and body["map"]["shape"] == [7, 7]
    np.testing.assert_allclose(np.array(body["map"]["values"]).reshape(7, 7), cam.numpy(), atol=2e-5)


def test_filters_guided_backprop_and_units_work_for_a_zoo_model(
    client: TestClient, saved: dict[str, nn.Module], make_image
) -> None:
    filters = client.get("/api/v1/models/resnet18/filters").json()
    weight = dict(saved["resnet18"].named_modules())["conv1"].weight.detach().double()
    assert filters["layer"] == "conv1" and filters["shape"] == [64, 3, 7, 7]
    np.testing.assert_allclose(filters["norms"], weight.flatten(1).norm(dim=1).numpy(), atol=1e-5)
    data = make_image(200, 200, seed=14)
    png = client.post("/api/v1/models/resnet18/units/layer3.1/5/backprop",
                      files={"image": ("a.png", data, "image/png")})
    assert png.status_code == 200 and Image.open(io.BytesIO(png.content)).size == (224, 224)
    units = client.get("/api/v1/models/resnet18/units").json()
    assert units["layer"] == "layer4.1" and units["unit_count"] == 512
    # A module inside a block can be asked for by its dotted name.
    inner = post(client, "resnet18", data, layers="layer2.0.conv1,fc", format="npz")
    assert inner.status_code == 200
    arrays = np.load(io.BytesIO(inner.content))
    assert arrays["layer2.0.conv1"].shape == (128, 28, 28) and arrays["fc"].shape == (1000,)


def test_a_module_inside_a_dense_layer_answers_as_a_plain_forward_computes_it(
    client: TestClient, saved: dict[str, nn.Module], make_image
) -> None:
    data = make_image(230, 250, seed=16)
    inner = "features.denseblock2.denselayer3.conv2"
    info = {la["name"]: la for la in client.get("/api/v1/models/densenet121").json()["all_layers"]}[inner]
    assert (info["receptive_field"], info["stride"]) == (63 + 3 * 2 * 8, 8)  # transition 1, three 3x3s on
    response = post(client, "densenet121", data, layers=inner, format="npz")
    assert response.status_code == 200, response.text
    maps, _ = reference(saved["densenet121"], "densenet121", data, [inner])
    got = np.load(io.BytesIO(response.content))[inner]
    np.testing.assert_allclose(got, maps[inner], rtol=0, atol=1e-5 * max(1.0, float(np.abs(maps[inner]).max())))


def test_a_shared_module_is_not_offered(client: TestClient, make_image) -> None:
    # A BasicBlock's ReLU runs twice in one pass: it has no single output to show.
    response = post(client, "resnet18", make_image(64, 64), layers="layer1.0.relu")
    assert response.status_code == 422 and response.json()["type"].endswith("unknown-layer")


def test_a_zoo_model_without_weights_is_listed_with_its_fetch_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_image
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    with TestClient(create_app(make_settings(models="tiny,mobilenet_v2"))) as c:
        listed = {m["id"]: m for m in c.get("/api/v1/models").json()["models"]}
        response = post(c, "mobilenet_v2", make_image(64, 64))
    missing = listed["mobilenet_v2"]
    assert missing["available"] is False and missing["how_to_get"] == "layerscope fetch-weights mobilenet_v2"
    assert "mobilenet_v2-7ebf99e0.pth" in missing["unavailable_reason"]
    assert response.status_code == 404 and "layerscope fetch-weights mobilenet_v2" in response.json()["detail"]

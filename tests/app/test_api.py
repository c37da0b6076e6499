"""The v1 API against an independent computation: plain torchvision forward passes."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image
from torchvision import transforms as T
from torchvision.models import AlexNet_Weights, alexnet

from app.main import create_app
from app.settings import Settings
from models.layers import DEFAULT_LAYERS
from models.zoo.tinyweights import WEIGHTS_DIR

CONV_RELU = [int(n.split(".")[1]) for n in DEFAULT_LAYERS]


@pytest.fixture(scope="module")
def client(alexnet_weights: Path) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(alexnet_weights=str(alexnet_weights)))) as c:
        yield c


def reference_alexnet(weights: Path, image_bytes: bytes) -> tuple[dict[int, torch.Tensor], torch.Tensor]:
    """Independent: torchvision's own AlexNet + its own preset transforms, layers run by hand."""
    net = alexnet()
    net.load_state_dict(torch.load(weights, weights_only=True))
    net.eval()
    image = Image.open(io.BytesIO(image_bytes)).convert("RGB")
    x = AlexNet_Weights.IMAGENET1K_V1.transforms()(image)[None]
    outputs: dict[int, torch.Tensor] = {}
    with torch.no_grad():
        for index, module in enumerate(net.features):
            x = module(x)
            outputs[index] = x.clone()
        logits = net.classifier(torch.flatten(net.avgpool(x), 1))[0]
    return outputs, logits


def decode_sent(layer: dict) -> tuple[list[int], np.ndarray]:
    """Client-side decoding exactly as README.md's API section describes it: the channels the
    atlas holds (every one, unless it lists them) and their maps."""
    atlas = np.asarray(Image.open(io.BytesIO(base64.b64decode(layer["atlas"]["png"]))))
    channels, h, w = layer["shape"]
    sent = layer["atlas"].get("channels", list(range(channels)))
    columns = layer["atlas"]["columns"]
    lo, hi = np.array(layer["lo"]), np.array(layer["hi"])
    maps = np.empty((len(sent), h, w))
    for tile, c in enumerate(sent):
        row, col = divmod(tile, columns)
        q = atlas[row * h : (row + 1) * h, col * w : (col + 1) * w].astype(np.float64)
        maps[tile] = lo[c] + q / 255.0 * (hi[c] - lo[c])
    return sent, maps


def decode_atlas(layer: dict) -> np.ndarray:
    """Every channel's map, from an atlas that holds them all."""
    sent, maps = decode_sent(layer)
    assert sent == list(range(layer["shape"][0])), f"{layer['name']} carries {len(sent)} of its maps"
    return maps


def post(client: TestClient, model: str, data: bytes, **params: object):
    return client.post(
        f"/api/v1/models/{model}/activations", params=params, files={"image": ("x.png", data, "image/png")}
    )


def assert_faithful(body: dict, reference: dict[int, torch.Tensor], logits: torch.Tensor) -> None:
    assert [layer["name"] for layer in body["layers"]] == list(DEFAULT_LAYERS)
    for layer, index in zip(body["layers"], CONV_RELU, strict=True):
        expected = reference[index][0].numpy().astype(np.float64)
        assert layer["shape"] == list(expected.shape)
        decoded = decode_atlas(layer)
        bound = (np.array(layer["hi"]) - np.array(layer["lo"]))[:, None, None] / 510
        assert np.all(np.abs(decoded - expected) <= bound + 1e-6), layer["name"]
        flat = expected.reshape(expected.shape[0], -1)
        assert np.allclose(layer["channels"]["max"], flat.max(1), rtol=1e-4, atol=1e-6)
        # The share of positive values; a pre-activation within float rounding of zero (the
        # served network sums in another order) may fall either side of the ReLU.
        pre = reference[index - 1][0].numpy().reshape(flat.shape)
        active = np.array(layer["channels"]["active"])
        assert np.all(active >= (pre > 1e-5).mean(1) - 1e-4) and np.all(active <= (pre > -1e-5).mean(1) + 1e-4)
        assert np.allclose(active, (flat > 0).mean(1), atol=2 / flat.shape[1])
    probabilities = torch.softmax(logits.double(), 0)
    top = torch.topk(probabilities, 5)
    assert [p["index"] for p in body["predictions"]] == top.indices.tolist()
    assert np.allclose([p["probability"] for p in body["predictions"]], top.values.numpy(), atol=1e-6)


def test_alexnet_maps_match_plain_torchvision(client: TestClient, alexnet_weights: Path, make_image) -> None:
    data = make_image(640, 480, "JPEG", seed=3)
    response = post(client, "alexnet", data)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    reference, logits = reference_alexnet(alexnet_weights, data)
    assert_faithful(body, reference, logits)
    assert body["input"]["width"] == 640 and body["input"]["height"] == 480
    labels = AlexNet_Weights.IMAGENET1K_V1.meta["categories"]
    assert all(p["label"] == labels[p["index"]] for p in body["predictions"])


def test_preprocessed_input_is_what_the_network_saw(client: TestClient, make_image) -> None:
    data = make_image(300, 200, seed=5)
    body = post(client, "alexnet", data).json()
    png = base64.b64decode(body["input"]["preprocessed"].split(",", 1)[1])
    seen = np.asarray(Image.open(io.BytesIO(png))).astype(np.float64) / 255
    x = AlexNet_Weights.IMAGENET1K_V1.transforms()(Image.open(io.BytesIO(data)).convert("RGB"))
    mean = torch.tensor([0.485, 0.456, 0.406])[:, None, None]
    std = torch.tensor([0.229, 0.224, 0.225])[:, None, None]
    expected = (x * std + mean).clamp(0, 1).permute(1, 2, 0).numpy()
    assert seen.shape == (224, 224, 3)
    assert np.abs(seen - expected).max() <= 0.5 / 255 + 1e-6


def test_npz_equals_reference_within_1e5(client: TestClient, alexnet_weights: Path, make_image) -> None:
    data = make_image(500, 375, "JPEG", seed=4)
    response = post(client, "alexnet", data, format="npz", layers="features.1,features.11,classifier.6")
    assert response.status_code == 200
    arrays = np.load(io.BytesIO(response.content))
    reference, logits = reference_alexnet(alexnet_weights, data)
    assert np.allclose(arrays["features.1"], reference[1][0].numpy(), atol=1e-5)
    assert np.allclose(arrays["features.11"], reference[11][0].numpy(), atol=1e-5)
    assert np.allclose(arrays["classifier.6"], logits.numpy(), atol=1e-5)
    assert np.allclose(arrays["probabilities"], torch.softmax(logits.double(), 0).numpy(), atol=1e-6)


def test_torch_home_cache_path_serves_the_same_weights(
    alexnet_weights: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_image
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    cache = tmp_path / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    shutil.copy(alexnet_weights, cache / "alexnet-owt-7be5be79.pth")
    monkeypatch.delenv("LAYERSCOPE_ALEXNET_WEIGHTS", raising=False)
    data = make_image(256, 256, seed=8)
    with TestClient(create_app(Settings(models="alexnet"))) as c:
        body = post(c, "alexnet", data).json()
        listed = c.get("/api/v1/models").json()["models"][0]
        detail = c.get("/api/v1/models/alexnet").json()
    reference, logits = reference_alexnet(alexnet_weights, data)
    assert_faithful(body, reference, logits)
    # Random weights under torchvision's file name: served, and called what they are.
    digest = hashlib.sha256(alexnet_weights.read_bytes()).hexdigest()
    for summary in (listed, detail):
        assert summary["weights"] == {"file": "alexnet-owt-7be5be79.pth", "sha256": digest, "verified": False}
        assert "unverified weights" in summary["title"] and "unverified weights" in summary["trained_on"]
        assert not any("imagenet" in summary[k].lower() for k in ("title", "description", "trained_on"))
        assert summary["metrics"] == {}


def test_env_variable_names_the_weights(alexnet_weights: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAYERSCOPE_ALEXNET_WEIGHTS", str(alexnet_weights))
    monkeypatch.setenv("LAYERSCOPE_MODELS", "alexnet")
    with TestClient(create_app(Settings())) as c:
        assert c.get("/api/v1/models/alexnet").json()["available"] is True


def test_tiny_matches_plain_torchvision_transforms(client: TestClient, make_image) -> None:
    entry = client.app.state.registry["tiny"]  # type: ignore[attr-defined]
    data = make_image(333, 222, seed=6)
    body = post(client, "tiny", data, top_k=3).json()
    size = entry.input_size
    independent = T.Compose([
        T.Resize(size, antialias=True), T.CenterCrop(size), T.ToTensor(), T.Normalize(entry.mean, entry.std)
    ])
    x = independent(Image.open(io.BytesIO(data)).convert("RGB"))[None]
    net = entry.network
    outputs = {}
    with torch.no_grad():
        for index, module in enumerate(net.features):
            x = module(x)
            outputs[index] = x.clone()
        logits = net.classifier(torch.flatten(net.avgpool(x), 1))[0]
    assert len(body["predictions"]) == 3
    for layer, index in zip(body["layers"], CONV_RELU, strict=True):
        decoded = decode_atlas(layer)
        bound = (np.array(layer["hi"]) - np.array(layer["lo"]))[:, None, None] / 510
        assert np.all(np.abs(decoded - outputs[index][0].numpy()) <= bound + 1e-6)
    probabilities = torch.softmax(logits.double(), 0)
    assert body["predictions"][0]["index"] == int(probabilities.argmax())


def test_raw_body_and_multipart_give_the_same_answer(client: TestClient, make_image) -> None:
    data = make_image(64, 64, seed=9)
    raw = client.post(
        "/api/v1/models/tiny/activations", content=data, headers={"content-type": "image/png"}
    ).json()
    multipart = post(client, "tiny", data).json()
    assert raw["predictions"] == multipart["predictions"]
    assert raw["layers"][0]["atlas"] == multipart["layers"][0]["atlas"]


def test_models_listing(client: TestClient) -> None:
    body = client.get("/api/v1/models").json()
    assert body["default"] == "tiny"
    ids = {m["id"]: m for m in body["models"]}
    assert set(ids) == {"tiny", "alexnet"}
    alex = ids["alexnet"]
    assert alex["available"] and alex["input_size"] == 224 and len(alex["classes"]) == 1000
    assert [layer["stage"] for layer in alex["layers"]] == ["edges", "textures", "parts", "parts", "objects"]
    detail = client.get("/api/v1/models/alexnet").json()
    assert "classifier.6" in [layer["name"] for layer in detail["all_layers"]]
    tiny_file = WEIGHTS_DIR / "tiny.safetensors"
    tiny_sha = hashlib.sha256(tiny_file.read_bytes()).hexdigest()
    assert tiny_sha == json.loads((WEIGHTS_DIR / "tiny.json").read_text())["sha256"]
    assert ids["tiny"]["weights"] == {"file": "tiny.safetensors", "sha256": tiny_sha, "verified": True}
    assert client.get("/api/v1/models/tiny").json()["weights"] == ids["tiny"]["weights"]
    assert ids["tiny"]["title"] == "MiniAlexNet (parts world)"
    # The test's random AlexNet weights are not torchvision's file, whatever their name.
    assert alex["weights"]["verified"] is False and detail["weights"] == alex["weights"]


def test_unavailable_alexnet_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, make_image) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with TestClient(create_app(Settings(alexnet_weights=None))) as c:
        listed = c.get("/api/v1/models/alexnet").json()
        assert listed["available"] is False and listed["how_to_get"] == "layerscope fetch-weights alexnet"
        assert listed["weights"] is None
        response = post(c, "alexnet", make_image(32, 32))
        assert response.status_code == 404
        assert "fetch-weights" in response.json()["detail"]


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"layers": "features.99"}, 422),
        ({"layers": "<script>alert(1)</script>"}, 422),
        ({"top_k": 0}, 422),
        ({"top_k": "many"}, 422),
        ({"format": "xml"}, 422),
    ],
)
def test_bad_parameters_are_422_problems(client: TestClient, make_image, params: dict, status: int) -> None:
    response = post(client, "tiny", make_image(32, 32), **params)
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert set(problem) == {"type", "title", "status", "detail"} and problem["status"] == status
    assert "<script>" not in problem["detail"]


@pytest.mark.parametrize(
    ("kwargs", "status"),
    [
        ({"files": {"picture": ("x.png", b"123", "image/png")}}, 422),
        ({"content": b"", "headers": {"content-type": "image/png"}}, 400),
        ({"content": b"hello", "headers": {"content-type": "text/plain"}}, 415),
        ({"content": b"GIF89a-but-broken", "headers": {"content-type": "image/gif"}}, 400),
        ({"content": b"--x\r\nbroken", "headers": {"content-type": "multipart/form-data; boundary=x"}}, 400),
    ],
)
def test_bad_uploads_are_4xx_problems(client: TestClient, kwargs: dict, status: int) -> None:
    response = client.post("/api/v1/models/tiny/activations", **kwargs)
    assert response.status_code == status, response.text
    assert response.json()["status"] == status


def test_unknown_model_is_404(client: TestClient) -> None:
    assert client.get("/api/v1/models/resnet").status_code == 404
    assert client.get("/api/v1/models/resnet").json()["title"] == "Not Found"


def test_hooks_are_gone_after_every_request_even_failed_ones(client: TestClient, make_image) -> None:
    def hook_count() -> int:
        registry = client.app.state.registry  # type: ignore[attr-defined]
        return sum(len(m._forward_hooks) for e in registry.values() for m in e.network.modules())

    post(client, "tiny", make_image(40, 40))
    assert hook_count() == 0
    # A forward pass that fails inside capture: a layer whose output cannot be drawn as maps.
    response = post(client, "tiny", make_image(40, 40, seed=11), layers="features.1,features")
    assert response.status_code in (200, 422)
    assert hook_count() == 0


def test_hooks_are_gone_after_a_forward_pass_that_raises(
    client: TestClient, make_image, monkeypatch: pytest.MonkeyPatch
) -> None:
    network = client.app.state.registry["tiny"].network  # type: ignore[attr-defined]

    def broken(_x: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("secret internal failure")

    # The classifier runs after every captured layer: the hooks have fired when it raises.
    monkeypatch.setattr(network.classifier, "forward", broken)
    # Same app (its lifespan already ran), but answering like a real server instead of re-raising.
    real = TestClient(client.app, raise_server_exceptions=False)
    response = post(real, "tiny", make_image(40, 40, seed=13))
    assert response.status_code == 500
    assert response.json()["status"] == 500 and "secret" not in response.text
    assert all(not m._forward_hooks for m in network.modules())


def test_cache_returns_the_same_bytes(client: TestClient, make_image) -> None:
    data = make_image(48, 48, seed=12)
    first = post(client, "tiny", data)
    second = post(client, "tiny", data)
    assert first.content == second.content


def test_health_and_docs(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json()["models"] == {"tiny": True, "alexnet": True}
    schema = client.get("/openapi.json").json()
    assert "/api/v1/models/{model_id}/activations" in schema["paths"]
    assert client.get("/docs").status_code == 200

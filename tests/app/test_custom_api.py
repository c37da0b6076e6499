"""Your own network through the API, exactly as tiny is explored: maps, predictions, explanations.

The configuration file, the builder module and the weights are written by the test; the
reference is the network the test built, run on torchvision's own transforms of the picture
with hooks on the modules of the same names.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image
from safetensors.torch import save_file
from torch import nn
from torchvision import transforms as T

from app.main import create_app
from models.capture import Hook, hooked
from tests.app.conftest import make_settings
from tests.app.test_api import decode_atlas, post
from tests.models.zoo.test_custom import BUILDER

MEAN, STD = (0.48, 0.46, 0.41), (0.27, 0.26, 0.28)
CONFIG = '''
[models.mine]
title = "Mine"
trained_on = "three kinds of things"
builder = "{module}:build"
weights = "mine.safetensors"
classes = ["teapot", "kite", "comet"]
input_size = 96
resize_size = 110
mean = [0.48, 0.46, 0.41]
std = [0.27, 0.26, 0.28]

[models.normed]
builder = "{module}:normed"
weights = "normed.safetensors"
classes = ["teapot", "kite", "comet"]
input_size = 32
mean = [0.5, 0.5, 0.5]
std = [0.25, 0.25, 0.25]

[models.flat]
builder = "{module}:flat"
weights = "flat.safetensors"
classes = ["teapot", "kite", "comet"]
input_size = 16
mean = [0.5, 0.5, 0.5]
std = [0.25, 0.25, 0.25]

[models.broken]
builder = "{module}:broken"
weights = "mine.safetensors"
classes = ["teapot", "kite", "comet"]
input_size = 96
mean = [0.48, 0.46, 0.41]
std = [0.27, 0.26, 0.28]
'''


@pytest.fixture(scope="module")
def configured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, nn.Module]]:
    folder = tmp_path_factory.mktemp("own")
    module = f"own_{folder.name.replace('-', '_')}"
    (folder / f"{module}.py").write_text(BUILDER)
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(folder))
        torch.manual_seed(21)
        nets = __import__(module)
        network = nets.build().eval()
        save_file(network.state_dict(), str(folder / "mine.safetensors"))
        save_file(nets.normed().state_dict(), str(folder / "normed.safetensors"))
        save_file(nets.flat().state_dict(), str(folder / "flat.safetensors"))
        config = folder / "own.toml"
        config.write_text(CONFIG.format(module=module))
        yield config, network


@pytest.fixture(scope="module")
def client(configured: tuple[Path, nn.Module]) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings(config=str(configured[0])))) as c:
        yield c


def test_the_listing_has_the_configured_models_beside_tiny(
    client: TestClient, configured: tuple[Path, nn.Module]
) -> None:
    models = {m["id"]: m for m in client.get("/api/v1/models").json()["models"]}
    assert list(models) == ["tiny", "mine", "normed", "flat", "broken"]
    mine = models["mine"]
    assert (mine["title"], mine["trained_on"], mine["group"], mine["available"]) == (
        "Mine", "three kinds of things", "custom", True)
    assert mine["normalization"] == {"mean": list(MEAN), "std": list(STD)} and mine["input_size"] == 96
    broken = models["broken"]
    assert broken["available"] is False
    assert "raised RuntimeError: the builder needs a GPU" in broken["unavailable_reason"]
    assert broken["how_to_get"] == f"fix [models.broken] in {configured[0]}"
    response = post(client, "broken", b"x")
    assert response.status_code == 404 and "the builder needs a GPU" in response.json()["detail"]


def test_maps_and_predictions_equal_a_plain_forward_pass(
    client: TestClient, configured: tuple[Path, nn.Module], make_image
) -> None:
    network = configured[1]
    data = make_image(300, 200, seed=31)
    body = post(client, "mine", data).json()
    layers = [layer["name"] for layer in body["layers"]]
    assert layers == client.get("/api/v1/models/mine").json()["default_layers"] == ["1", "2", "5", "6"]
    transform = T.Compose([T.Resize(110, interpolation=T.InterpolationMode.BILINEAR, antialias=True),
                           T.CenterCrop(96), T.ToTensor(), T.Normalize(MEAN, STD)])
    picture = transform(Image.open(io.BytesIO(data)).convert("RGB"))[None]
    modules = dict(network.named_modules())
    outputs: dict[str, np.ndarray] = {}
    hooks: list[Hook] = [
        (modules[n], "post", lambda _m, _a, out, n=n: outputs.__setitem__(n, out[0].numpy().astype(np.float64)))
        for n in layers
    ]
    with torch.no_grad(), hooked(hooks):
        logits = network(picture)[0].double()
    for layer in body["layers"]:
        expected = outputs[layer["name"]]
        bound = (np.array(layer["hi"]) - np.array(layer["lo"]))[:, None, None] / 510
        assert np.all(np.abs(decode_atlas(layer) - expected) <= bound + 1e-6), layer["name"]
    probabilities = torch.softmax(logits, 0).numpy()
    assert [p["index"] for p in body["predictions"]] == list(np.argsort(-probabilities, kind="stable"))
    assert np.allclose([p["probability"] for p in body["predictions"]], np.sort(probabilities)[::-1], atol=1e-6)
    names = ["teapot", "kite", "comet"]
    assert [p["label"] for p in body["predictions"]] == [names[p["index"]] for p in body["predictions"]]


def test_explanations_work_for_your_own_network(client: TestClient, make_image) -> None:
    data = make_image(120, 120, seed=32)
    cam = client.post("/api/v1/models/mine/gradcam", files={"image": ("a.png", data, "image/png")})
    assert cam.status_code == 200 and cam.json()["layer"] == "6"
    filters = client.get("/api/v1/models/mine/filters").json()
    assert filters["layer"] == "0" and filters["shape"] == [8, 3, 5, 5]
    backprop = client.post("/api/v1/models/mine/units/2/1/backprop", files={"image": ("a.png", data, "image/png")})
    assert backprop.status_code == 200 and Image.open(io.BytesIO(backprop.content)).size == (96, 96)
    unit = client.get("/api/v1/models/mine/units/5/2")
    assert unit.status_code == 200 and unit.json()["featvis"]["source"] == "computed"


def test_the_start_names_what_is_served_and_what_is_not(
    configured: tuple[Path, nn.Module], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    with caplog.at_level(logging.INFO, logger="layerscope"), TestClient(
            create_app(make_settings(models="tiny,resnet18", config=str(configured[0])))):
        pass
    lines = [r.getMessage() for r in caplog.records if r.name == "layerscope"]
    assert lines[0].startswith("layerscope: model broken (") and "the builder needs a GPU" in lines[0]
    assert lines[1:3] == [
        "layerscope: serving tiny, mine, normed, flat",
        "layerscope: resnet18 is listed without its weights; fetch them with: layerscope fetch-weights resnet18",
    ]
    assert lines[3].startswith(f"layerscope: broken is listed but not served: [models.broken] in {configured[0]}: ")
    assert lines[3].endswith("raised RuntimeError: the builder needs a GPU.") and len(lines) == 4


def test_a_network_without_rgb_filters_or_maps_answers_422_where_it_has_nothing(
    client: TestClient, make_image
) -> None:
    models = {m["id"]: m for m in client.get("/api/v1/models").json()["models"]}
    assert models["normed"]["filters_layer"] is None and models["normed"]["cam_layer"] is not None
    assert models["flat"]["cam_layer"] is None and models["flat"]["default_layers"] == []
    filters = client.get("/api/v1/models/normed/filters")
    assert filters.status_code == 422 and filters.json()["type"].endswith("not-drawable")
    data = make_image(40, 40, seed=33)
    cam = client.post("/api/v1/models/flat/gradcam", files={"image": ("a.png", data, "image/png")})
    assert cam.status_code == 422 and cam.json()["type"].endswith("not-spatial")
    units = client.get("/api/v1/models/flat/units")
    assert units.status_code == 422 and units.json()["type"].endswith("unknown-layer")
    body = post(client, "flat", data).json()
    assert body["layers"] == [] and len(body["predictions"]) == 3
    # Its one layer can still be asked for by name.
    named = post(client, "flat", data, layers="1", format="npz")
    assert named.status_code == 200 and np.load(io.BytesIO(named.content))["1"].shape == (3,)

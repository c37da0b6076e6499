"""Models built on first use: a server listing several torchvision classifiers starts without
building any, the first requests for one build it once (concurrent ones too), and its answers
are those of a plain torchvision forward pass, as for a model built at start.

Random weights are saved under torchvision's file names in a temporary TORCH_HOME; every call
of the zoo's network builder is counted (and slowed, so that concurrent requests overlap it).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image
from torch import nn
from torchvision.models import get_model

from app.main import create_app
from models.zoo import torchvision_zoo as zoo
from models.zoo.imagenet import zoo_entry
from tests.app.conftest import make_settings
from tests.app.test_api import decode_atlas, post
from tests.app.test_teach_api import TEACH, add, open_session
from tests.app.test_zoo_api import reference

LISTED = ("resnet18", "mobilenet_v3_small", "squeezenet1_0")
builds: Counter[str] = Counter()


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, nn.Module]]:
    home = tmp_path_factory.mktemp("torch-home")
    real_build = zoo.build_network

    def counted(name: str, path: Path) -> nn.Module:
        builds[name] += 1
        time.sleep(0.3)  # long enough that every concurrent first request arrives during the build
        return real_build(name, path)

    networks = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TORCH_HOME", str(home))
        patch.setattr(torch.hub, "_hub_dir", None)
        patch.setattr(zoo, "build_network", counted)
        for seed, name in enumerate(LISTED):
            torch.manual_seed(seed)
            networks[name] = get_model(name, weights=None).eval()
            path = zoo.weights_file(name)
            path.parent.mkdir(parents=True, exist_ok=True)
            torch.save(networks[name].state_dict(), path)
        yield networks


@pytest.fixture(scope="module")
def client(saved: dict[str, nn.Module]) -> Iterator[TestClient]:
    # No cap on one client's requests in flight: the test client sends the concurrent ones.
    with TestClient(create_app(make_settings(models=",".join(("tiny", *LISTED)), client_inflight=0))) as c:
        yield c


def test_start_up_builds_none_of_them_and_the_listing_says_what_it_needs(client: TestClient) -> None:
    assert builds == Counter()
    listing = {m["id"]: m for m in client.get("/api/v1/models").json()["models"]}
    for name in LISTED:
        m = listing[name]
        # Found and hashed at start: available, and honest that these random weights are unverified.
        assert m["available"] and not m["loaded"] and m["weights"]["verified"] is False
        assert m["title"].endswith("(unverified weights)") and m["how_to_get"] is None
        assert m["default_layers"] == [] and m["layers"] == []
    assert listing["tiny"]["loaded"]
    assert client.get("/").status_code == 200 and client.get("/readyz").json()["models"]["resnet18"] is True
    assert builds == Counter()


def test_concurrent_first_requests_build_it_once_and_answer_as_torchvision(
    client: TestClient, saved: dict[str, nn.Module], make_image
) -> None:
    name = "mobilenet_v3_small"
    data = make_image(300, 260, seed=3)
    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda _: post(client, name, data), range(6)))
    assert [a.status_code for a in answers] == [200] * 6
    assert builds[name] == 1 and builds["resnet18"] == 0
    body = answers[0].json()
    assert all(a.json()["predictions"] == body["predictions"] for a in answers)
    maps, logits = reference(saved[name], name, data, [layer["name"] for layer in body["layers"]])
    for layer in body["layers"]:
        expected = maps[layer["name"]]
        bound = (np.array(layer["hi"]) - np.array(layer["lo"]))[:, None, None] / 510
        assert np.all(np.abs(decode_atlas(layer) - expected) <= bound + 1e-5 * (1 + np.abs(expected))), layer["name"]
    probabilities = torch.softmax(logits, 0).numpy()
    assert np.allclose([p["probability"] for p in body["predictions"]],
                       probabilities[[p["index"] for p in body["predictions"]]], atol=1e-6)


def test_once_built_it_is_described_exactly_as_a_model_built_at_start(client: TestClient) -> None:
    name = "squeezenet1_0"
    lazy = client.get(f"/api/v1/models/{name}").json()  # the first use: it is built here
    assert builds[name] == 1 and lazy["loaded"] and lazy["default_layers"]
    eager = zoo_entry(name)
    assert builds[name] == 2  # built at once, without ``lazy``
    assert lazy == {**eager.summary(), "all_layers": [info.to_dict() for info in eager.layers.values()]}
    client.get(f"/api/v1/models/{name}")
    assert builds[name] == 2


def test_a_head_imports_onto_a_model_no_request_has_built_yet(saved: dict[str, nn.Module]) -> None:
    base = "mobilenet_v3_small"
    settings = make_settings(models=",".join(("tiny", *LISTED)), client_inflight=0)
    with TestClient(create_app(settings)) as teacher:
        session = open_session(teacher, ["dark", "light"], model=base)
        for value in (10, 20, 30):
            add(teacher, session, "dark", Image.new("RGB", (64, 64), (value, value, value)))
            add(teacher, session, "light", Image.new("RGB", (64, 64), (255 - value,) * 3))
        assert teacher.post(f"{TEACH}/{session}/train").status_code == 200
        head = teacher.get(f"{TEACH}/{session}/export").content
    with TestClient(create_app(settings)) as fresh:
        listing = {m["id"]: m for m in fresh.get("/api/v1/models").json()["models"]}
        assert not listing[base]["loaded"]
        response = fresh.post(f"{TEACH}/import", content=head, headers={"content-type": "application/octet-stream"})
        assert response.status_code == 201, response.text
        assert response.json()["model"] == base and response.json()["classes"] == ["dark", "light"]

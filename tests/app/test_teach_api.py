"""The teaching API end to end: teach, train (JSON and events), predict, export, import, forget.

Predictions and units are compared with an independent computation: the base network cut
by hand (its first twelve modules, then a mean over each map) on torchvision's own
preprocessing of the same picture, and the head's exported numbers applied in torch.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image
from safetensors.numpy import load

from app.main import create_app
from models.teach.export import head_bytes, read_metadata
from models.teach.head import Head
from models.units import layer_shapes
from models.zoo.registry import ModelEntry
from tests.app.conftest import make_settings
from tests.conftest import encode
from tests.models.teach.pictures import conv5_pooled, scenes

TEACH = "/api/v1/teach"
PNG = {"content-type": "image/png"}


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(create_app(make_settings())) as c:
        yield c


def open_session(client: TestClient, classes: list[str], model: str = "tiny") -> str:
    response = client.post(TEACH, json={"model": model, "classes": classes})
    assert response.status_code == 201, response.text
    return str(response.json()["session"])


def add(client: TestClient, session: str, label: str, picture: Image.Image) -> Any:
    response = client.post(f"{TEACH}/{session}/examples", params={"label": label}, content=encode(picture), headers=PNG)
    assert response.status_code == 200, response.text
    return response.json()


def predict(client: TestClient, session: str, picture: Image.Image) -> dict[str, Any]:
    response = client.post(f"{TEACH}/{session}/predict", files={"image": ("p.png", encode(picture), "image/png")})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture(scope="module")
def taught(client: TestClient) -> dict[str, Any]:
    """house and boat, 30 examples each, trained: the session and its training result."""
    session = open_session(client, ["house", "boat"])
    for name in ("house", "boat"):
        for picture in scenes(name, 30):
            counts = add(client, session, name, picture)["counts"]
    assert counts == {"house": 30, "boat": 30}
    response = client.post(f"{TEACH}/{session}/train")
    assert response.status_code == 200, response.text
    return {"session": session, "result": response.json()}


def by_hand(client: TestClient, head_file: bytes, picture: Image.Image) -> tuple[torch.Tensor, torch.Tensor]:
    """(probabilities, terms [classes, units]) from plain torch and the exported numbers."""
    entry = client.app.state.registry["tiny"]  # type: ignore[attr-defined]
    a = conv5_pooled(entry.network, entry.preprocess(picture)[None])[0].double()
    t = {k: torch.from_numpy(v).double() for k, v in load(head_file).items()}
    terms = t["weight"] * ((a - t["mean"]) / t["std"])
    return torch.softmax(terms.sum(1) + t["bias"], 0), terms


@pytest.mark.slow
def test_teaching_two_world_classes_recognizes_fresh_ones(client: TestClient, taught: dict[str, Any]) -> None:
    result = taught["result"]
    assert result["steps"] > 0 and result["train_examples"] + result["heldout_examples"] == 60
    assert result["heldout_accuracy"] >= 0.9
    assert [c["label"] for c in result["classes"]] == ["house", "boat"]
    assert all(c["units"] and c["units"][0]["layer"] == "features.11" for c in result["classes"])
    fresh = [(c, p) for c in (0, 1) for p in scenes(("house", "boat")[c], 20, fresh=True)]
    answers = [predict(client, taught["session"], p)["predictions"][0]["label"] for _, p in fresh]
    right = sum(answer == ("house", "boat")[c] for answer, (c, _) in zip(answers, fresh, strict=True))
    assert right / len(fresh) >= 0.95


@pytest.mark.slow
def test_predictions_and_units_match_plain_torch(client: TestClient, taught: dict[str, Any]) -> None:
    session = taught["session"]
    head_file = client.get(f"{TEACH}/{session}/export").content
    for picture in scenes("boat", 2, fresh=True, start=50) + scenes("house", 1, fresh=True, start=50):
        body = predict(client, session, picture)
        probabilities, terms = by_hand(client, head_file, picture)
        got = {p["label"]: p["probability"] for p in body["predictions"]}
        np.testing.assert_allclose([got["house"], got["boat"]], probabilities.numpy(), rtol=1e-4, atol=1e-6)
        winner = int(probabilities.argmax())
        want = [int(k) for k in torch.argsort(terms[winner], descending=True, stable=True)[:5] if terms[winner, k] > 0]
        assert [u["unit"] for u in body["units"]] == want
        np.testing.assert_allclose([u["weight"] for u in body["units"]], terms[winner, want].numpy(), rtol=1e-3)
        assert {"label", "named", "description", "title"} <= set(body["units"][0])
        base = body["base"]["predictions"]
        assert body["base"]["model"] == "tiny" and len(base) == 5
        assert sum(p["probability"] for p in base) <= 1.0 + 1e-6 and base[0]["probability"] >= base[-1]["probability"]


@pytest.mark.slow
def test_an_exported_head_imports_and_predicts_the_same(client: TestClient, taught: dict[str, Any]) -> None:
    exported = client.get(f"{TEACH}/{taught['session']}/export")
    assert exported.status_code == 200 and exported.headers["content-type"] == "application/octet-stream"
    assert ".safetensors" in exported.headers["content-disposition"] and len(exported.content) < 8192
    metadata = read_metadata(exported.content)
    assert (json.loads(metadata["classes"]), metadata["base"]) == (["house", "boat"], "tiny")
    octets = {"content-type": "application/octet-stream"}
    opened = client.post(f"{TEACH}/import", content=exported.content, headers=octets)
    assert opened.status_code == 201, opened.text
    assert opened.json()["classes"] == ["house", "boat"] and opened.json()["trained"] is True
    twin = opened.json()["session"]
    assert twin != taught["session"]
    for picture in scenes("boat", 2, fresh=True, start=80):
        original = predict(client, taught["session"], picture)["predictions"]
        assert predict(client, twin, picture)["predictions"] == original


def head_for(entry: ModelEntry) -> bytes:
    """An untaught head file for ``entry`` (every weight 0), as the server would export it."""
    assert entry.network is not None and entry.cam_layer is not None
    units = layer_shapes(entry.network, entry.input_size)[entry.cam_layer][0]
    zeros = np.zeros(units, np.float32)
    head = Head(("a", "b"), entry.id, entry.cam_layer, zeros, zeros + 1, np.zeros((2, units), np.float32),
                np.zeros(2, np.float32))
    return head_bytes(head)


def test_a_head_written_elsewhere_imports(client: TestClient) -> None:
    data = head_for(client.app.state.registry["tiny"])  # type: ignore[attr-defined]
    opened = client.post(f"{TEACH}/import", content=data, headers={"content-type": "application/octet-stream"})
    assert opened.status_code == 201 and opened.json()["classes"] == ["a", "b"]
    probabilities = predict(client, opened.json()["session"], scenes("car", 1)[0])["predictions"]
    assert [p["probability"] for p in probabilities] == [0.5, 0.5]


def parse_events(text: str) -> list[tuple[str, dict[str, Any]]]:
    """A server-sent event stream as (kind, data) pairs, read the way an EventSource reads it."""
    events = []
    for block in text.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((fields["event"], json.loads(fields["data"])))
    return events


def test_training_as_events_reports_progress_then_the_result(client: TestClient) -> None:
    session = open_session(client, ["house", "boat", "car"])
    for name in ("house", "boat", "car"):
        for picture in scenes(name, 5):
            add(client, session, name, picture)
    response = client.post(f"{TEACH}/{session}/train", headers={"accept": "text/event-stream"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    events = parse_events(response.text)
    kinds = [kind for kind, _ in events]
    assert kinds[-1] == "result" and set(kinds[:-1]) == {"progress"} and len(kinds) > 5
    steps = [data["step"] for kind, data in events if kind == "progress"]
    assert steps == sorted(steps) and steps[-1] == events[-1][1]["steps"]
    first, last = events[0][1], events[-2][1]
    assert last["loss"] < first["loss"] and {"train_accuracy", "heldout_accuracy"} <= set(first)
    assert events[-1][1]["heldout_examples"] == 3  # one of each class's five held out
    assert client.app.state.teach.sessions[session].trained == events[-1][1]  # type: ignore[attr-defined]


def test_training_runs_in_the_heavy_lane(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = client.app.state.engine  # type: ignore[attr-defined]
    original, jobs = engine.heavy_job, []

    def counted(*args: Any) -> Any:
        jobs.append(args)
        return original(*args)

    monkeypatch.setattr(engine, "heavy_job", counted)
    session = open_session(client, ["a", "b"])
    for label, seed in (("a", 1), ("a", 2), ("b", 3), ("b", 4)):
        add(client, session, label, Image.fromarray(np.full((64, 64, 3), seed * 50, np.uint8)))
    assert client.post(f"{TEACH}/{session}/train").status_code == 200
    assert client.post(f"{TEACH}/{session}/train", headers={"accept": "text/event-stream"}).status_code == 200
    assert len(jobs) == 2


def test_sessions_are_isolated_and_gone_after_delete(client: TestClient) -> None:
    one, two = open_session(client, ["mug", "pen"]), open_session(client, ["mug", "pen"])
    picture = scenes("car", 1)[0]
    assert add(client, one, "mug", picture)["counts"] == {"mug": 1, "pen": 0}
    store = client.app.state.teach  # type: ignore[attr-defined]
    assert store.sessions[two].counts() == {"mug": 0, "pen": 0}
    assert client.delete(f"{TEACH}/{one}").status_code == 204
    for method, path in (("post", "/train"), ("post", "/predict"), ("get", "/export"), ("delete", "")):
        gone = client.request(method, f"{TEACH}/{one}{path}")
        assert gone.status_code == 404 and gone.headers["content-type"] == "application/problem+json"
    late = client.post(f"{TEACH}/{one}/examples", params={"label": "mug"}, content=encode(picture), headers=PNG)
    assert late.status_code == 404
    assert two in store.sessions and one not in store.sessions
    assert client.delete(f"{TEACH}/nobody-has-this-id").status_code == 404


def test_the_openapi_document_lists_every_teaching_route(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    wanted = {(TEACH, "post"), (f"{TEACH}/import", "post"), (f"{TEACH}/{{session_id}}/examples", "post"),
              (f"{TEACH}/{{session_id}}/train", "post"), (f"{TEACH}/{{session_id}}/predict", "post"),
              (f"{TEACH}/{{session_id}}/export", "get"), (f"{TEACH}/{{session_id}}", "delete")}
    for path, method in wanted:
        assert paths[path][method]["summary"], (path, method)


@pytest.mark.slow
def test_predict_can_show_where_the_evidence_for_the_winner_lies(client: TestClient, taught: dict[str, Any]) -> None:
    session = taught["session"]
    picture = scenes("house", 1, fresh=True, start=90)[0]
    response = client.post(f"{TEACH}/{session}/predict", params={"cam": "true"}, content=encode(picture), headers=PNG)
    body = response.json()
    assert predict(client, session, picture)["cam"] is None  # only when asked for
    cam = body["cam"]
    assert cam["label"] == body["predictions"][0]["label"] and cam["heatmap_size"] == [128, 128]
    seen = np.array(Image.open(io.BytesIO(base64.b64decode(cam["picture"].split(",", 1)[1]))))
    np.testing.assert_array_equal(seen, np.array(picture))  # tiny saw the 128 px scene as it is
    heat = np.array(Image.open(io.BytesIO(base64.b64decode(cam["heatmap"].split(",", 1)[1]))))[..., 3]

    entry = client.app.state.registry["tiny"]  # type: ignore[attr-defined]
    t = {k: torch.from_numpy(v).double() for k, v in load(client.get(f"{TEACH}/{session}/export").content).items()}
    features = entry.network.get_submodule("features")
    with torch.no_grad():
        maps = torch.nn.Sequential(*list(features)[:12])(entry.preprocess(picture)[None])[0].double()
    leaf = maps.clone().requires_grad_()
    winner = ["house", "boat"].index(cam["label"])
    logit = (t["weight"][winner] * (leaf.mean(dim=(1, 2)) - t["mean"]) / t["std"]).sum()
    (grad,) = torch.autograd.grad(logit, leaf)
    want = torch.relu((grad.mean(dim=(1, 2))[:, None, None] * maps).sum(0))
    big = torch.nn.functional.interpolate(want[None, None], size=(128, 128), mode="bilinear")[0, 0].numpy()
    assert np.corrcoef(big.ravel(), heat.ravel().astype(np.float64))[0, 1] > 0.95


def test_any_loaded_model_can_be_the_base(alexnet_weights: Path) -> None:
    """AlexNet (random weights written by the test) as the base: its conv5 has 256 units."""
    settings = make_settings(models="tiny,alexnet", alexnet_weights=str(alexnet_weights))
    with TestClient(create_app(settings)) as client:
        session = open_session(client, ["house", "boat"], model="alexnet")
        for name in ("house", "boat"):
            for picture in scenes(name, 3):
                add(client, session, name, picture)
        trained = client.post(f"{TEACH}/{session}/train").json()
        assert trained["model"] == "alexnet" and trained["layer"] == "features.11"
        body = predict(client, session, scenes("boat", 1, fresh=True)[0])
        assert body["base"]["model"] == "alexnet" and len(body["base"]["predictions"]) == 5
        head = client.get(f"{TEACH}/{session}/export").content
        assert load(head)["weight"].shape == (2, 256) and read_metadata(head)["base"] == "alexnet"
        twin = client.post(f"{TEACH}/import", content=head, headers={"content-type": "application/octet-stream"})
        assert twin.status_code == 201 and twin.json()["model"] == "alexnet"

"""The explanation endpoints on a small hand-made tiny model with its own shipped files.

A narrow MiniAlexNet (8 channels per conv, 64 px input) is written to a temporary weights
folder exactly as the training job writes one (safetensors + tiny.json + checkpoints),
with a dissection file, and the precompute script's own functions write its sprites and
OOD statistics; the registry is pointed there. So every route runs the real code paths.
"""

from __future__ import annotations

import base64
import dataclasses
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

import models.zoo.registry as registry
from app.main import create_app
from app.services import featvis
from app.settings import Settings
from models import world
from models.nets import MiniAlexNet, NetConfig
from models.ood import score_batch
from models.zoo import assets
from models.zoo.meta import TaughtParts
from models.zoo.tinyweights import save_model, sha256_file, write_meta
from scripts import precompute_explain as precompute

CONFIG = NetConfig(num_classes=len(world.CLASSES), widths=(8, 8, 8, 8, 8), hidden=16, dropout=0.0)
SIZE = 64
BASE = "/api/v1/models/tiny"
TINY_ENTRY = registry.tiny_entry  # before any test points it elsewhere


def build_weights(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(3)
    final, init = MiniAlexNet(CONFIG).eval(), MiniAlexNet(CONFIG).eval()
    header = {"net": json.dumps(CONFIG.to_dict())}
    checkpoints = []
    for name, net, step in (("init", init, 0), ("final", final, 10)):
        file = f"tiny-ckpt-{name}.safetensors"
        save_model(net, folder / file, metadata={**header, "step": str(step)})
        checkpoints.append({"name": name, "step": step, "fraction": step / 10, "file": file})
    digest = save_model(final, folder / "tiny.safetensors")
    meta = {
        "classes": list(world.CLASSES), "input_size": SIZE, "mean": [0.42, 0.418, 0.415],
        "std": [0.234, 0.231, 0.232], "net": CONFIG.to_dict(), "checkpoints": checkpoints,
        "sha256": digest, "metrics": {}, "trained_on": "a test",
    }
    write_meta(meta, folder)
    dissection = {
        "features.9": [
            {"unit": u, "concept": "wheel" if u == 0 else "leaf", "kind": "part", "iou": 0.41 if u == 0 else 0.05,
             "quantile": 0.99, "category": "part" if u == 0 else "none"}
            for u in range(8)
        ]
    }
    (folder / "tiny-dissection.json").write_text(json.dumps(dissection))
    out = folder / "explain"
    out.mkdir()
    index: dict[str, Any] = {"weights_sha256": digest, "layers": list(precompute.LAYERS), "featvis": {}, "patches": {}}
    _, best100 = precompute.make_patches(final, meta, out, 24, index)
    precompute.make_featvis(final, meta, out, 2, index, best100)
    (out / "index.json").write_text(json.dumps(index))
    precompute.make_ood(final, meta, out, sha256_file(folder / "tiny.safetensors"), 66, 33)


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tinyweights")
    build_weights(folder)
    return folder


@pytest.fixture(scope="module")
def client(weights: Path) -> Iterator[TestClient]:
    patch = pytest.MonkeyPatch()
    patch.setattr(registry, "tiny_entry", lambda: TINY_ENTRY(weights))
    settings = Settings(models="tiny", rate_limit=0, rate_limit_keyed=0)
    with TestClient(create_app(settings)) as test_client:
        yield test_client
    patch.undo()


def picture(seed: int = 0) -> bytes:
    sample = world.generate(5, seed, SIZE)
    buffer = io.BytesIO()
    Image.fromarray(sample.image).save(buffer, format="PNG")
    return buffer.getvalue()


def decode_png(url_or_b64: str) -> np.ndarray:
    raw = url_or_b64.split(",", 1)[1] if url_or_b64.startswith("data:") else url_or_b64
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(raw))))


def post(client: TestClient, path: str, **params: Any) -> Any:
    return client.post(path, params=params, content=picture(), headers={"content-type": "image/png"})


def problem(response: Any, status: int, slug: str | None = None) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    if slug is not None:
        assert response.json()["type"].endswith(slug)


# ------------------------------------------------------------------ filters


def test_filters_atlas_shape_norms_and_checkpoints(client: TestClient) -> None:
    body = client.get(f"{BASE}/filters").json()
    assert body["layer"] == "features.0" and body["shape"] == [8, 3, 11, 11]
    assert body["atlas"]["tile"] == [44, 44] and body["atlas"]["columns"] == 3
    pixels = decode_png(body["atlas"]["png"])
    assert pixels.shape == (3 * 44, 3 * 44, 3)
    assert len(body["norms"]) == 8 and all(n > 0 for n in body["norms"])
    init = client.get(f"{BASE}/filters", params={"checkpoint": "init", "scale": 1}).json()
    assert init["checkpoint"] == "init" and init["atlas"]["tile"] == [11, 11]
    assert init["norms"] != body["norms"]


@pytest.mark.parametrize(
    ("params", "status", "slug"),
    [
        ({"layer": "features.3"}, 422, "not-drawable"),
        ({"layer": "nope"}, 422, "unknown-layer"),
        ({"checkpoint": "50pct"}, 422, "unknown-checkpoint"),
        ({"scale": 0}, 422, "invalid-parameter"),
    ],
)
def test_filters_errors(client: TestClient, params: dict[str, Any], status: int, slug: str) -> None:
    problem(client.get(f"{BASE}/filters", params=params), status, slug)


# ------------------------------------------------------------------ Grad-CAM


def test_gradcam_default_is_top_class_at_conv5(client: TestClient) -> None:
    activations = post(client, f"{BASE}/activations", layers="features.11").json()
    body = post(client, f"{BASE}/gradcam").json()
    assert body["class_index"] == activations["predictions"][0]["index"]
    assert body["label"] == world.CLASSES[body["class_index"]] and body["layer"] == "features.11"
    h, w = activations["layers"][0]["shape"][1:]
    assert body["map"]["shape"] == [h, w] and len(body["map"]["values"]) == h * w
    values = np.array(body["map"]["values"])
    assert values.min() >= 0 and values.max() <= 1
    heat = decode_png(body["heatmap"])
    assert heat.shape == (SIZE, SIZE, 4)


def test_gradcam_other_class_and_layer(client: TestClient) -> None:
    body = post(client, f"{BASE}/gradcam", class_index=3, layer="features.7").json()
    assert body["class_index"] == 3 and body["layer"] == "features.7"


@pytest.mark.parametrize(
    ("params", "status", "slug"),
    [
        ({"class_index": 11}, 422, "unknown-class"),
        ({"class_index": -1}, 422, "invalid-parameter"),
        ({"layer": "classifier.5"}, 422, "not-spatial"),
        ({"layer": "features.99"}, 422, "unknown-layer"),
    ],
)
def test_gradcam_errors(client: TestClient, params: dict[str, Any], status: int, slug: str) -> None:
    problem(post(client, f"{BASE}/gradcam", **params), status, slug)


def test_gradcam_needs_an_image(client: TestClient) -> None:
    problem(client.post(f"{BASE}/gradcam", content=b"", headers={"content-type": "image/png"}), 400)
    problem(client.post("/api/v1/models/nope/gradcam", content=picture()), 404, "unknown-model")


# ------------------------------------------------------------------ guided backprop


def test_backprop_png_at_input_size(client: TestClient) -> None:
    for objective in ("max", "sum"):
        response = post(client, f"{BASE}/units/features.9/2/backprop", objective=objective)
        assert response.status_code == 200 and response.headers["content-type"] == "image/png"
        assert response.headers["cache-control"] == "no-store"
        assert np.asarray(Image.open(io.BytesIO(response.content))).shape == (SIZE, SIZE, 3)


@pytest.mark.parametrize(
    ("path", "params", "status", "slug"),
    [
        ("units/features.9/8/backprop", {}, 404, "unknown-unit"),
        ("units/features.9/-1/backprop", {}, 422, "invalid-parameter"),
        ("units/nope/0/backprop", {}, 422, "unknown-layer"),
        ("units/features.9/0/backprop", {"objective": "mean"}, 422, "invalid-parameter"),
    ],
)
def test_backprop_errors(client: TestClient, path: str, params: dict[str, Any], status: int, slug: str) -> None:
    problem(post(client, f"{BASE}/{path}", **params), status, slug)


# ------------------------------------------------------------------ units


def test_units_list_labels_and_filters(client: TestClient) -> None:
    body = client.get(f"{BASE}/units", params={"layer": "features.9"}).json()
    assert body["unit_count"] == 8 and body["dissected"] and len(body["units"]) == 8
    first = body["units"][0]
    assert (first["label"], first["iou"], first["named"], first["category"]) == ("wheel", 0.41, True, "part")
    assert first["description"] == "wheel detector" and body["units"][1]["description"] is None
    named = client.get(f"{BASE}/units", params={"layer": "features.9", "named": True}).json()
    assert [u["channel"] for u in named["units"]] == [0]
    leaf = client.get(f"{BASE}/units", params={"layer": "features.9", "concept": "leaf"}).json()
    assert [u["channel"] for u in leaf["units"]] == list(range(1, 8))
    plain = client.get(f"{BASE}/units", params={"layer": "features.4"}).json()
    assert not plain["dissected"] and plain["units"][0]["label"] is None


def test_units_list_with_sprites(client: TestClient) -> None:
    body = client.get(f"{BASE}/units", params={"layer": "features.11", "sprites": True}).json()
    featvis = body["sprites"]["featvis"]
    assert featvis["units"] == 8 and featvis["tile"] == [64, 64]
    assert featvis["url"].startswith("data:image/png;base64,")
    assert decode_png(featvis["url"]).shape == (3 * 64, 3 * 64, 3)
    patches = body["sprites"]["patches"]
    assert patches["url"].startswith("data:image/jpeg;base64,")
    assert decode_png(patches["url"]).shape == (8 * 32, 9 * 32, 3)
    assert client.get(f"{BASE}/units", params={"layer": "features.1", "sprites": True}).json()["sprites"] == {
        "featvis": None, "patches": None
    }


def test_unit_detail(client: TestClient) -> None:
    body = client.get(f"{BASE}/units/features.9/0").json()
    assert (body["label"], body["iou"], body["named"]) == ("wheel", 0.41, True)
    assert body["featvis"]["source"] == "precomputed"
    assert decode_png(body["featvis"]["png"]).shape == (64, 64, 3)
    assert body["patches"]["count"] == 9 and len(body["patches"]["activations"]) == 9
    assert decode_png(body["patches"]["png"]).shape == (32, 9 * 32, 3)
    acts = body["patches"]["activations"]
    assert acts == sorted(acts, reverse=True)


def test_unit_detail_computes_unshipped_units(client: TestClient) -> None:
    body = client.get(f"{BASE}/units/features.1/5").json()
    assert body["featvis"]["source"] == "computed" and body["patches"] is None and body["label"] is None
    assert decode_png(body["featvis"]["png"]).shape == (64, 64, 3)


@pytest.mark.parametrize(
    ("path", "status", "slug"),
    [("units/features.9/8", 404, "unknown-unit"), ("units/bogus/0", 422, "unknown-layer")],
)
def test_unit_errors(client: TestClient, path: str, status: int, slug: str) -> None:
    problem(client.get(f"{BASE}/{path}"), status, slug)
    problem(client.get(f"{BASE}/units", params={"layer": "bogus"}), 422, "unknown-layer")


# ------------------------------------------------------------------ activations: checkpoint, ood


def test_activations_report_ood_and_take_checkpoints(client: TestClient) -> None:
    final = post(client, f"{BASE}/activations", layers="features.1").json()
    assert final["checkpoint"] is None
    ood = final["ood"]
    assert set(ood) == {"score", "threshold", "unfamiliar"} and ood["unfamiliar"] == (ood["score"] > ood["threshold"])
    # The served score (computed from the request's own forward pass) equals the score of a
    # separate pass over the same preprocessed picture (its parts are checked against their
    # definitions in tests/models/test_explain_ood.py).
    entry = client.app.state.registry["tiny"]  # type: ignore[attr-defined]
    x = entry.preprocess(Image.open(io.BytesIO(picture())).convert("RGB"))[None]
    stats = assets.ood_stats(entry.weights_source)
    assert stats is not None and stats.method == "exposure"
    assert ood["score"] == pytest.approx(float(score_batch(stats, entry.network, x)[0]), abs=1e-3)
    assert ood["threshold"] == pytest.approx(stats.threshold, abs=1e-4)
    init = post(client, f"{BASE}/activations", layers="features.1", checkpoint="init").json()
    assert init["checkpoint"] == "init"
    assert init["layers"][0]["hi"] != final["layers"][0]["hi"]  # a different network, not the cache
    assert init["ood"] == ood  # the picture is judged by the served weights
    again = post(client, f"{BASE}/activations", layers="features.1", checkpoint="final").json()
    assert again["checkpoint"] == "final"
    assert np.allclose(again["layers"][0]["hi"], final["layers"][0]["hi"], rtol=1e-5)
    problem(post(client, f"{BASE}/activations", checkpoint="nope"), 422, "unknown-checkpoint")


def test_model_lists_checkpoints_without_files(client: TestClient) -> None:
    body = client.get(BASE).json()
    assert [c["name"] for c in body["checkpoints"]] == ["init", "final"]
    assert all("file" not in c for c in body["checkpoints"])


def test_no_hooks_left_after_explanations(client: TestClient) -> None:
    post(client, f"{BASE}/gradcam")
    post(client, f"{BASE}/units/features.7/1/backprop")
    network = client.app.state.registry["tiny"].network  # type: ignore[attr-defined]
    assert all(not m._forward_hooks for m in network.modules())
    assert all(m.inplace for m in network.modules() if isinstance(m, torch.nn.ReLU))
    assert all(not p.requires_grad for p in network.parameters())


def test_untrained_model_has_no_ood_and_no_labels(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(registry, "tiny_entry", lambda: TINY_ENTRY(tmp_path))  # no weights: untrained
    settings = Settings(models="tiny", rate_limit=0, rate_limit_keyed=0)
    with TestClient(create_app(settings)) as plain:
        assert not plain.app.state.registry["tiny"].trained  # type: ignore[attr-defined]
        body = plain.post(f"{BASE}/activations", content=picture(), headers={"content-type": "image/png"}).json()
        assert body["ood"] is None
        units = plain.get(f"{BASE}/units", params={"layer": "features.9"}).json()
        assert not units["dissected"]


def test_alexnet_explanations(alexnet_weights: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """AlexNet (random test weights): no shipped files, so unit pictures are computed on demand."""
    monkeypatch.setattr(featvis, "ON_DEMAND_STEPS", 2)  # the path, not the picture's quality
    settings = Settings(models="alexnet", alexnet_weights=str(alexnet_weights), rate_limit=0, rate_limit_keyed=0)
    with TestClient(create_app(settings)) as alex:
        base = "/api/v1/models/alexnet"
        filters = alex.get(f"{base}/filters").json()
        assert filters["shape"] == [64, 3, 11, 11] and filters["atlas"]["columns"] == 8
        problem(alex.get(f"{base}/filters", params={"checkpoint": "init"}), 422, "unknown-checkpoint")
        cam = post(alex, f"{base}/gradcam").json()
        assert cam["map"]["shape"] == [13, 13] and decode_png(cam["heatmap"]).shape == (224, 224, 4)
        unit = alex.get(f"{base}/units/features.11/3").json()
        assert unit["featvis"]["source"] == "computed" and unit["patches"] is None and unit["label"] is None
        assert decode_png(unit["featvis"]["png"]).shape == (112, 112, 3)
        body = post(alex, f"{base}/activations", layers="features.1").json()
        assert "ood" not in body and body["checkpoint"] is None


def test_units_given_a_part_by_training_say_so(weights: Path) -> None:
    """A recipe that read part type k from unit k (models/training's assigned readout) taught
    those units: the listing and the unit say which part, on that layer (and its pre-ReLU map) only."""
    taught = TaughtParts("where", 4, (("wheel", 0), ("window", 1)))
    patch = pytest.MonkeyPatch()
    patch.setattr(registry, "tiny_entry", lambda: dataclasses.replace(TINY_ENTRY(weights), taught_parts=taught))
    try:
        with TestClient(create_app(Settings(models="tiny", rate_limit=0, rate_limit_keyed=0))) as c:
            for layer in ("features.9", "features.8"):
                units = c.get(f"{BASE}/units", params={"layer": layer}).json()["units"]
                assert [u["taught"] for u in units[:3]] == ["wheel", "window", None], layer
            top = c.get(f"{BASE}/units", params={"layer": "features.11"}).json()["units"]
            assert all(u["taught"] is None for u in top)
            body = c.get(f"{BASE}/units/features.9/1").json()
            assert body["taught"] == "window" and body["label"] == "leaf"  # taught, yet dissection found no window
    finally:
        patch.undo()


def test_units_of_an_untaught_model_say_none(client: TestClient) -> None:
    units = client.get(f"{BASE}/units", params={"layer": "features.9"}).json()["units"]
    assert [u["taught"] for u in units] == [None] * 8
    assert client.get(f"{BASE}/units/features.9/0").json()["taught"] is None

"""The routes' parameter dependencies (app/deps.py), the unit-label policy (app/services/units.py)
and the engine's settings: hand-made entries and records, expectations written out."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.deps import known_checkpoint, known_layers, known_unit
from app.errors import ProblemError
from app.inference import Engine
from app.services import units
from models.layers import LayerInfo
from models.zoo.meta import Checkpoint, TaughtParts
from models.zoo.registry import ModelEntry
from tests.app.conftest import make_settings

LAYERS = {
    "features.8": LayerInfo("features.8", "conv4 (before ReLU)", "mid", 67, 16, 0.0),
    "features.9": LayerInfo("features.9", "conv4", "mid", 67, 16, 0.0),
    "features.11": LayerInfo("features.11", "conv5", "high", 83, 16, 0.0),
}


def entry(**fields: object) -> ModelEntry:
    plain = ModelEntry(
        "toy", "Toy", "", "", 64, (0.5,) * 3, (0.25,) * 3, ["a", "b"], True, True, layers=LAYERS,
        default_layers=("features.9", "features.11"),
    )
    return replace(plain, **fields)  # type: ignore[arg-type]


def problem(call: object, status: int, slug: str) -> ProblemError:
    assert callable(call)
    with pytest.raises(ProblemError) as caught:
        call()
    assert caught.value.status == status and caught.value.slug == slug
    return caught.value


def test_layers_parse_in_order_without_repeats_and_blank_means_the_defaults() -> None:
    toy = entry()
    assert known_layers(toy, None) == ("features.9", "features.11") == known_layers(toy, "  ")
    assert known_layers(toy, " features.11,features.9,features.11 ") == ("features.11", "features.9")
    error = problem(lambda: known_layers(toy, "features.9,conv<9>,bogus"), 422, "unknown-layer")
    assert "Unknown layer name(s): bogus." in error.detail and "conv<9>" not in error.detail


def test_checkpoints_and_units() -> None:
    toy = entry(checkpoints=(Checkpoint("init", 0, 0.0, "a.safetensors"),))
    assert known_checkpoint(toy, None) is None and known_checkpoint(toy, "  ") is None
    assert known_checkpoint(toy, "init") == "init"
    assert "known: init" in problem(lambda: known_checkpoint(toy, "final"), 422, "unknown-checkpoint").detail
    shapes: dict[str, tuple[int, ...]] = {"features.9": (96, 7, 7)}
    assert known_unit(shapes, "features.9", 95) == 95
    assert "channel must be 0..95" in problem(lambda: known_unit(shapes, "features.9", 96), 404, "unknown-unit").detail


@pytest.mark.parametrize(
    ("query", "slug"),
    [
        ("filters?scale=0&layer=bogus", "invalid-parameter"),  # every parameter is validated first
        ("filters?layer=bogus&checkpoint=bogus", "unknown-layer"),
        ("gradcam?class_index=999&layer=classifier.1", "not-spatial"),
        ("units/bogus/-1", "invalid-parameter"),
        ("units/features.9/999/backprop?objective=bad", "invalid-parameter"),
        ("units?layer=bogus&named=notbool", "invalid-parameter"),
        ("activations?layers=bogus&checkpoint=bad", "unknown-checkpoint"),
    ],
)
def test_a_request_with_two_faults_gets_the_first_one(tiny_client: TestClient, query: str, slug: str) -> None:
    path = f"/api/v1/models/tiny/{query}"
    method = "POST" if query.startswith(("gradcam", "activations")) or "backprop" in query else "GET"
    response = tiny_client.request(method, path, content=b"", headers={"content-type": "image/png"})
    assert response.status_code in (404, 422) and response.json()["type"].endswith(slug), response.text


def test_labels_and_descriptions() -> None:
    assert units.unit_label(None) == {"label": None, "iou": None, "named": False, "description": None}
    record = {"channel": 3, "label": "wheel", "iou": 0.41, "category": "part", "quantile": 0.99, "extra": 1}
    assert units.unit_label(record) == {
        "label": "wheel", "iou": 0.41, "named": True, "description": "wheel detector", "category": "part",
        "quantile": 0.99,
    }
    edge = {"channel": 0, "label": "bus", "iou": 0.02, "category": "edge/colour", "osi": 0.8}
    assert units.unit_label(edge)["description"] == "edge/colour unit" and not units.unit_label(edge)["named"]
    assert units.describe({"label": "leaf", "category": "none"}, named=False) is None


def test_dissection_file_and_taught_units(tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    toy = entry(dissection_file=path, taught_parts=TaughtParts("where", 4, (("wheel", 0), ("window", 1))))
    assert units.dissection(toy) == {} and units.dissection(entry()) == {}
    path.write_text('{"features.9": [{"unit": 1, "concept": "leaf", "iou": 0.05, "category": "none"}]}')
    assert units.layer_records(toy, "features.9")[1]["label"] == "leaf"
    assert units.taught_units(toy, "features.8") == {0: "wheel", 1: "window"} == units.taught_units(toy, "features.9")
    assert units.taught_units(toy, "features.11") == {} and units.taught_units(entry(), "features.9") == {}
    listed = units.listing(toy, "features.9", 3, named=False, concept="leaf", sprites=True)
    assert [u["channel"] for u in listed["units"]] == [1] and listed["units"][0]["taught"] == "window"
    assert listed["dissected"] and listed["sprites"] == {"featvis": None, "patches": None}


def test_the_engine_takes_every_knob_from_settings() -> None:
    knobs = {"queue_size": 3, "cache_entries": 5, "retry_after_s": 4, "max_batch": 6, "cpu_workers": 1}
    engine = Engine.from_settings(make_settings(**knobs, batch_wait_ms=20))
    try:
        assert (engine.capacity, engine.cache.entries, engine.retry_after_s) == (4, 5, 4)
        assert (engine.max_batch, engine.batch_wait_s) == (6, 0.02)
        assert engine._workers._max_workers == 1
    finally:
        engine.shutdown()

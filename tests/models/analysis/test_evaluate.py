"""Evaluation of the shipped model on fresh parts-world images."""

from __future__ import annotations

import json

import pytest

from models import world
from models.analysis import evaluate
from models.zoo.tinyweights import load_tiny


def test_fresh_images_are_classified_far_above_chance() -> None:
    model, meta = load_tiny()
    result = evaluate.evaluate(model, meta, seed=424242, images=110)
    assert result["accuracy"] >= 0.8  # chance is 1/11
    confusion = result["confusion"]
    assert sum(map(sum, confusion)) == 110
    assert all(sum(row) == 10 for row in confusion)  # balanced classes
    assert set(result["per_class_accuracy"]) == set(world.CLASSES)


def test_main_prints_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert evaluate.main(["--model", "tiny", "--seed", "99", "--images", "22", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["images"] == 22 and 0.0 <= out["accuracy"] <= 1.0
    assert len(out["confusion"]) == len(world.CLASSES)

"""Evaluation of the shipped model on fresh parts-world images: accuracy, and the share flagged unfamiliar."""

from __future__ import annotations

import json

import numpy as np
import pytest

from models import world
from models.analysis import evaluate
from models.ood import score_batch
from models.preprocess import normalize
from models.zoo import assets
from models.zoo.tinyweights import WEIGHTS_DIR, WEIGHTS_FILE, load_tiny


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


def test_the_share_flagged_unfamiliar_is_counted_picture_by_picture() -> None:
    model, meta = load_tiny()
    stats = assets.ood_stats(str(WEIGHTS_DIR / WEIGHTS_FILE))
    assert stats is not None
    result = evaluate.evaluate(model, meta, seed=4711, images=33, batch=10, familiarity=stats)
    x, y, _ = world.generate_batch(4711, 0, 33, meta["input_size"])
    # Each picture on its own, through the score's public function.
    flags = np.array([score_batch(stats, model, normalize(x[i:i + 1], meta["mean"], meta["std"]))[0] > stats.threshold
                      for i in range(33)])
    assert result["ood_flagged"] == pytest.approx(flags.mean())
    for k, c in enumerate(world.CLASSES):
        assert result["ood_flagged_per_class"][c] == pytest.approx(flags[y == k].mean(), abs=1e-4)
    assert result["ood_method"] == stats.method
    plain = evaluate.evaluate(model, meta, seed=4711, images=33, batch=10)
    assert plain["ood_flagged"] is None and plain["ood_flagged_per_class"] is None
    assert plain["confusion"] == result["confusion"]  # the score's pass classifies the same


def test_main_reports_the_share_flagged(capsys: pytest.CaptureFixture[str]) -> None:
    assert evaluate.main(["--model", "tiny", "--seed", "99", "--images", "22", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert 0.0 <= out["ood_flagged"] <= 1.0 and set(out["ood_flagged_per_class"]) == set(world.CLASSES)

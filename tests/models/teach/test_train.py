"""Training a head: parts-world classes and photo crops told apart, seeded, held out, reported."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch
from PIL import Image

from models.teach.features import extract_all
from models.teach.head import Head
from models.teach.train import Progress, TrainConfig, Training, split
from models.zoo.registry import ModelEntry
from tests.models.teach.pictures import CAM, crops, scenes


def pooled(tiny: ModelEntry, pictures: list[Image.Image]) -> np.ndarray:
    assert tiny.network is not None and tiny.preprocess is not None
    return extract_all(tiny.network, [tiny.preprocess(p) for p in pictures], CAM).pooled


def template(classes: tuple[str, ...], units: int = 128) -> Head:
    zeros = np.zeros(units, np.float32)
    return Head(classes, "tiny", "features.11", zeros, zeros + 1, np.zeros((len(classes), units), np.float32),
                np.zeros(len(classes), np.float32))


def teach(
    features: list[np.ndarray], config: TrainConfig | None = None, on_progress: Callable[[Progress], None] | None = None
) -> Training:
    labels = np.concatenate([np.full(len(f), c) for c, f in enumerate(features)])
    names = tuple(f"class {c}" for c in range(len(features)))
    training = Training(
        np.concatenate(features), labels, template(names, features[0].shape[1]), config or TrainConfig(), on_progress
    )
    while not training.advance(0.01):
        pass
    return training


def accuracy(head: Head, fresh: list[np.ndarray]) -> float:
    right = sum(int((head.logits(f).argmax(1) == c).sum()) for c, f in enumerate(fresh))
    return right / sum(len(f) for f in fresh)


@pytest.mark.slow
def test_house_against_boat_from_thirty_examples_each(tiny: ModelEntry) -> None:
    examples = [pooled(tiny, scenes(name, 30)) for name in ("house", "boat")]
    fresh = [pooled(tiny, scenes(name, 200, fresh=True)) for name in ("house", "boat")]
    outcome = teach(examples).outcome()
    assert accuracy(outcome.head, fresh) >= 0.95
    assert outcome.train_examples == 48 and outcome.heldout_examples == 12
    assert outcome.heldout_accuracy is not None and outcome.heldout_accuracy >= 0.9


@pytest.mark.slow
def test_crops_of_two_photos_are_told_apart(tiny: ModelEntry) -> None:
    examples = [pooled(tiny, crops(photo, 30, seed=1)) for photo in ("astronaut", "coffee")]
    fresh = [pooled(tiny, crops(photo, 200, seed=2)) for photo in ("astronaut", "coffee")]
    assert accuracy(teach(examples).outcome().head, fresh) >= 0.9


def test_untaught_head_is_at_chance_so_the_accuracy_test_can_fail(tiny: ModelEntry) -> None:
    fresh = [pooled(tiny, scenes(name, 20, fresh=True)) for name in ("house", "boat")]
    assert accuracy(template(("house", "boat")), fresh) == 0.5  # zero weights: a tie, always class 0


def test_same_examples_same_head_and_progress_is_reported() -> None:
    rng = np.random.default_rng(0)
    features = [rng.normal(c, 1.0, size=(20, 8)).astype(np.float32) for c in range(3)]
    seen: list[Progress] = []
    config = TrainConfig(steps=50, report_every=10)
    first = teach(features, config, seen.append).outcome()
    second = teach(features, config).outcome()
    for name in ("weight", "bias", "mean", "std"):
        np.testing.assert_array_equal(getattr(first.head, name), getattr(second.head, name))
    assert [p.step for p in seen] == [10, 20, 30, 40, 50]
    assert seen[-1].loss < seen[0].loss
    assert all(p.heldout_accuracy is not None for p in seen)
    assert (first.loss, first.train_accuracy) == (seen[-1].loss, seen[-1].train_accuracy)
    # The report is the head's own: its logits give the reported accuracies on the two parts.
    x, labels = np.concatenate(features), np.repeat([0, 1, 2], 20)
    train, held = split(labels, 3, config)
    assert first.train_accuracy == pytest.approx(float((first.head.logits(x[train]).argmax(1) == labels[train]).mean()))
    assert first.heldout_accuracy == pytest.approx(float((first.head.logits(x[held]).argmax(1) == labels[held]).mean()))
    assert first.train_accuracy > 0.6


def test_reported_loss_is_the_cross_entropy_of_the_returned_head() -> None:
    rng = np.random.default_rng(1)
    features = [rng.normal(c, 2.0, size=(4, 6)).astype(np.float32) for c in range(2)]  # too few to hold out
    outcome = teach(features, TrainConfig(steps=30)).outcome()
    x = np.concatenate(features)
    labels = torch.tensor([0] * 4 + [1] * 4)
    loss = torch.nn.functional.cross_entropy(torch.from_numpy(outcome.head.logits(x)), labels)
    assert outcome.heldout_examples == 0 and outcome.heldout_accuracy is None
    assert outcome.loss == pytest.approx(float(loss), rel=1e-4)
    np.testing.assert_allclose(outcome.head.mean, x.mean(0), rtol=1e-5)


def test_split_holds_out_a_share_of_every_class() -> None:
    labels = np.repeat([0, 1, 2], [10, 5, 7])
    train, held = split(labels, 3, TrainConfig())
    assert sorted(np.bincount(labels[held], minlength=3).tolist()) == [1, 1, 2]
    assert set(train.tolist()) | set(held.tolist()) == set(range(22)) and not set(train) & set(held)
    few = np.repeat([0, 1], [4, 9])
    assert len(split(few, 2, TrainConfig())[1]) == 0

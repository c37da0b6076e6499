"""The units a class leans on, against plain torch: conv5's maps by hand, the head's weights by hand."""

from __future__ import annotations

import numpy as np
import torch

from models.teach.features import extract_all
from models.teach.train import TrainConfig, Training
from models.teach.units import class_units, contributions, leaning_units
from models.zoo.registry import ModelEntry
from tests.models.teach.pictures import CAM, conv5_pooled, scenes
from tests.models.teach.test_train import template


def test_units_are_the_largest_terms_of_the_winning_logit(tiny: ModelEntry) -> None:
    assert tiny.network is not None and tiny.preprocess is not None
    pictures = scenes("house", 12) + scenes("boat", 12)
    tensors = [tiny.preprocess(p) for p in pictures]
    features = extract_all(tiny.network, tensors, CAM).pooled
    labels = np.repeat([0, 1], 12)
    training = Training(features, labels, template(("house", "boat")), TrainConfig(steps=100))
    while not training.advance(0.01):
        pass
    head = training.outcome().head

    probe = tiny.preprocess(scenes("boat", 1, fresh=True)[0])
    a = conv5_pooled(tiny.network, probe[None])[0].double()
    w, b = torch.from_numpy(head.weight).double(), torch.from_numpy(head.bias).double()
    mu, sigma = torch.from_numpy(head.mean).double(), torch.from_numpy(head.std).double()
    terms = w * ((a - mu) / sigma)  # [classes, units]
    logits = terms.sum(1) + b
    winner = int(logits.argmax())
    want = [int(k) for k in torch.argsort(terms[winner], descending=True, stable=True)[:5] if terms[winner, k] > 0]

    got = leaning_units(head, a.float().numpy(), winner)
    assert [u.unit for u in got] == want and len(want) > 0
    np.testing.assert_allclose([u.weight for u in got], terms[winner, want].numpy(), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose([u.activation for u in got], a[want].numpy(), rtol=1e-5)
    # The terms add up to the head's own logit: nothing is left out of the explanation.
    every = contributions(head, a.float().numpy(), winner)
    assert abs(float(every.sum()) + head.bias[winner] - head.logits(a.float().numpy()[None])[0, winner]) < 1e-3


def test_a_class_leans_on_the_mean_terms_over_its_examples() -> None:
    head = template(("a", "b"), units=4)
    head.weight[0] = [1.0, -1.0, 0.5, 0.0]
    examples = np.array([[1.0, 1.0, 4.0, 9.0], [3.0, 1.0, 0.0, 9.0]], np.float32)
    got = class_units(head, examples, 0, top=3)
    # mean terms: unit 0 -> 2, unit 1 -> -1 (left out), unit 2 -> 1, unit 3 -> 0 (left out)
    assert [(u.unit, u.weight) for u in got] == [(0, 2.0), (2, 1.0)]
    assert class_units(head, examples[:0], 0) == []

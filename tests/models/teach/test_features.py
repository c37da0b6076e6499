"""Pooled features and the base logits against plain torch: the first twelve modules, then a mean."""

from __future__ import annotations

import numpy as np
import torch

from models.teach.features import extract, extract_all, pool
from models.zoo.registry import ModelEntry
from tests.models.teach.pictures import CAM, conv5_pooled, scenes


def _batch(tiny: ModelEntry, count: int) -> list[torch.Tensor]:
    assert tiny.preprocess is not None
    return [tiny.preprocess(p) for p in scenes("house", count)]


def test_pooled_last_conv_matches_the_network_cut_by_hand(tiny: ModelEntry) -> None:
    assert tiny.network is not None and CAM == CAM
    tensors = _batch(tiny, 5)
    got = extract(tiny.network, torch.stack(tensors), CAM)
    x = torch.stack(tensors)
    want = conv5_pooled(tiny.network, x).numpy()
    with torch.no_grad():
        logits = tiny.network(x.clone()).numpy()
    conv5 = tiny.network.get_submodule("features.10")
    assert isinstance(conv5, torch.nn.Conv2d) and got.pooled.shape == (5, conv5.out_channels)
    np.testing.assert_allclose(got.pooled, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got.logits, logits, rtol=1e-5, atol=1e-5)
    assert (got.pooled > 0).any()


def test_batches_give_the_same_features_as_one_pass(tiny: ModelEntry) -> None:
    assert tiny.network is not None
    tensors = _batch(tiny, 7)
    whole = extract(tiny.network, torch.stack(tensors), CAM)
    batched = extract_all(tiny.network, tensors, CAM, batch=3)
    np.testing.assert_allclose(batched.pooled, whole.pooled, rtol=1e-5, atol=1e-6)
    assert batched.logits.shape == (7, len(tiny.classes))


def test_pool_keeps_vectors_and_averages_maps() -> None:
    maps = torch.arange(24, dtype=torch.float32).reshape(1, 2, 3, 4)
    assert pool(maps).tolist() == [[5.5, 17.5]]
    assert pool(torch.ones(2, 3)).shape == (2, 3)

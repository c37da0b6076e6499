"""The unfamiliar-input score: Mahalanobis to the nearest class, a calibrated threshold, AUROC."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from models.explain import assets
from models.explain.ood import assess, auroc, calibrate, energy, energy_stats, features, fit, score_batch, scores
from models.nets import MiniAlexNet, NetConfig
from models.registry import _prepare


def test_auroc_by_hand() -> None:
    assert auroc([0, 1, 2], [3, 4]) == 1.0
    assert auroc([3, 4], [0, 1]) == 0.0
    assert auroc([1, 2], [1, 3]) == pytest.approx(0.625)  # (0.5 + 0 + 1 + 1) / 4


def test_far_points_score_higher_and_threshold_is_a_percentile(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1, 2], 300)
    centres = np.array([[0.0, 0, 0, 0], [5, 0, 0, 0], [0, 5, 0, 0]])
    train = centres[labels] + rng.normal(size=(900, 4))
    stats = fit(train, labels)
    held_out = centres[labels] + rng.normal(size=(900, 4))
    stats = calibrate(stats, held_out, 95.0, "abc")
    assert np.mean(scores(stats, held_out) > stats.threshold) == pytest.approx(0.05, abs=0.002)
    far = rng.normal(size=(100, 4)) * 0.3 + np.array([0, 0, 12, 12])
    assert auroc(scores(stats, held_out), scores(stats, far)) > 0.99
    stats.save(tmp_path / "ood.npz")
    loaded = type(stats).load(tmp_path / "ood.npz")
    np.testing.assert_allclose(scores(loaded, far), scores(stats, far))
    assert loaded.weights_sha256 == "abc" and loaded.percentile == 95.0


def test_assess_on_a_network_and_sha_guard(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = _prepare(MiniAlexNet(NetConfig(widths=(8, 8, 8, 8, 8), hidden=16)))
    x = torch.randn(40, 3, 64, 64)
    feats = features(net, x)
    assert feats.shape == (40, 8 + 16)
    weights = tmp_path / "tiny.safetensors"
    weights.write_bytes(b"not really weights")
    stats = calibrate(fit(feats, np.arange(40) % 2), feats, 99.0, assets.file_sha256(str(weights)))
    (tmp_path / "explain").mkdir()
    stats.save(tmp_path / "explain" / "ood.npz")
    found = assets.ood_stats(str(weights))
    assert found is not None
    result = assess(found, net, x[0])
    assert set(result) == {"score", "threshold", "unfamiliar"}
    other = tmp_path / "other" / "tiny.safetensors"
    other.parent.mkdir()
    other.write_bytes(b"different weights")
    (other.parent / "explain").mkdir()
    stats.save(other.parent / "explain" / "ood.npz")
    assert assets.ood_stats(str(other)) is None  # statistics of other weights are never used


def test_energy_score(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = _prepare(MiniAlexNet(NetConfig(widths=(8, 8, 8, 8, 8), hidden=16)))
    x = torch.randn(30, 3, 64, 64)
    expected = -torch.logsumexp(net(x).double(), dim=1).detach().numpy()
    stats = energy_stats(energy(net, x), 90.0, "sha")
    assert stats.method == "energy"
    np.testing.assert_allclose(score_batch(stats, net, x), expected, rtol=1e-12)
    assert stats.threshold == pytest.approx(np.percentile(expected, 90.0))
    stats.save(tmp_path / "e.npz")
    loaded = type(stats).load(tmp_path / "e.npz")
    assert loaded.method == "energy" and loaded.threshold == stats.threshold
    result = assess(loaded, net, x[0])
    assert result["score"] == pytest.approx(expected[0], abs=1e-4)

"""The unfamiliar-input scores (energy, energy+gram, Mahalanobis), their calibrated threshold, AUROC."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from models.capture import capture
from models.nets import MiniAlexNet, NetConfig
from models.ood import (
    COMBINED_LAYERS,
    GRAM_POWERS,
    assess,
    auroc,
    calibrate,
    combined_stats,
    energy,
    energy_stats,
    evidence,
    features,
    fit,
    gram_deviation,
    gram_rows,
    score_batch,
    scores,
    surprise,
)
from models.zoo import assets
from models.zoo.registry import prepare_for_serving


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
    net = prepare_for_serving(MiniAlexNet(NetConfig(widths=(8, 8, 8, 8, 8), hidden=16)))
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
    net = prepare_for_serving(MiniAlexNet(NetConfig(widths=(8, 8, 8, 8, 8), hidden=16)))
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


def test_gram_rows_equal_the_full_gram_matrix_row_sums() -> None:
    maps = torch.rand(3, 4, 5, 6, generator=torch.Generator().manual_seed(0)) * 3
    rows = gram_rows(maps)
    assert rows.shape == (3, len(GRAM_POWERS) * 4)
    for b in range(3):
        for k, p in enumerate(GRAM_POWERS):
            f = maps[b].double().reshape(4, -1) ** p
            gram = f @ f.T  # the whole Gram matrix, the way the paper writes it
            np.testing.assert_allclose(rows[b, k * 4:(k + 1) * 4], gram.sum(1).numpy() ** (1 / p), rtol=1e-10)


def test_gram_deviation_and_surprise_by_hand() -> None:
    mins = {"l": np.array([[1.0, 2.0], [0.0, 0.0]])}
    maxs = {"l": np.array([[2.0, 4.0], [1.0, 1.0]])}
    rows = {"l": np.array([[1.5, 3.0], [0.5, 6.0], [1.5, 3.0]])}
    # Inside class 0's ranges: 0. Row 2: (1 - 0.5) / 1 below plus (6 - 4) / 4 above.
    # Row 3 judged as class 1: (1.5 - 1) / 1 + (3 - 1) / 1.
    dev = gram_deviation(mins, maxs, None, rows, np.array([0, 0, 1]))
    np.testing.assert_allclose(dev, [0.0, 1.0, 2.5], atol=1e-5)
    np.testing.assert_allclose(gram_deviation(mins, maxs, {"l": 2.0}, rows, np.array([0, 0, 1])), dev / 2)
    calibration = np.arange(10.0)  # 0 .. 9; the tail starts at the 90th percentile's value, 8
    # Up to 8: -log((share at least as large, +1) / (n + 1)). Past it: an exponential tail
    # whose scale is the mean excess over 8 (here 1), so the score keeps growing.
    np.testing.assert_allclose(surprise(calibration, np.array([-1.0, 2.0, 8.0, 9.0, 12.5])),
                               [0.0, -np.log(9 / 11), -np.log(3 / 11), -np.log(3 / 11) + 1, -np.log(3 / 11) + 4.5])


def test_combined_reuses_the_served_pass_and_flags_far_inputs(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = prepare_for_serving(MiniAlexNet(NetConfig(widths=(8, 8, 8, 8, 8), hidden=16)))
    g = torch.Generator().manual_seed(1)
    familiar = [torch.rand(60, 3, 64, 64, generator=g) * 0.5 for _ in range(3)]
    seen = [evidence(net, x) for x in familiar]
    labels = seen[0].logits.argmax(1)
    stats = combined_stats(seen[0], labels, seen[1], seen[2], 95.0, "sha")
    assert stats.method == "combined" and stats.gram is not None
    own = score_batch(stats, net, familiar[2])
    assert np.mean(own > stats.threshold) == pytest.approx(0.05, abs=0.02)
    far = torch.rand(20, 3, 64, 64, generator=g) * 8 + 3  # far brighter and rougher than any familiar input
    assert auroc(own, score_batch(stats, net, far)) > 0.95
    # The three parts, recomputed here from their definitions, add up to the score.
    x = far[:4]
    with torch.inference_mode(), capture(net, COMBINED_LAYERS) as maps:
        logits = net(x).double()
    energy_part = surprise(stats.gram.energies, (-torch.logsumexp(logits, 1)).numpy())
    rows = {"features.1": gram_rows(maps["features.1"])}
    gram_part = surprise(stats.gram.calibration, gram_deviation(stats.gram.mins, stats.gram.maxs,
                                                                stats.gram.expected, rows, logits.argmax(1).numpy()))
    parts_part = surprise(stats.gram.distances, scores(stats, maps["features.11"].double().mean((2, 3)).numpy()))
    np.testing.assert_allclose(score_batch(stats, net, x), energy_part + gram_part + parts_part, rtol=1e-9)
    stats.save(tmp_path / "c.npz")
    loaded = type(stats).load(tmp_path / "c.npz")
    np.testing.assert_allclose(score_batch(loaded, net, far), score_batch(stats, net, far))
    # assess() with the served pass's logits and maps gives the score without a second pass.
    one = far[0]
    with torch.inference_mode(), capture(net, COMBINED_LAYERS) as maps:
        served = net(one.unsqueeze(0))[0].numpy()
    reused = assess(loaded, net, one, served, {k: v[0] for k, v in maps.items()})
    assert reused == assess(loaded, net, one)
    assert reused["score"] == pytest.approx(float(score_batch(stats, net, one.unsqueeze(0))[0]), abs=1e-4)

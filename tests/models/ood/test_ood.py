"""The unfamiliar-input scores (exposure, combined, energy, Mahalanobis), their thresholds, and the shipped one's
shares flagged of real photos and of generated pictures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from models import world
from models.capture import capture
from models.nets import MiniAlexNet, NetConfig
from models.ood import (
    COMBINED_LAYERS,
    GRAM_POWERS,
    HEAD_INPUTS,
    assess,
    auroc,
    calibrate,
    combined,
    combined_stats,
    committee,
    energy,
    energy_stats,
    evidence,
    exposure_stats,
    features,
    fit,
    gram_deviation,
    gram_rows,
    head_inputs,
    score_batch,
    scores,
    scores_and_logits,
    served_layers,
    surprise,
    train_head,
)
from models.ood.exposure import HIDDEN, MEMBERS, HeadFit, references
from models.ood.outliers import KINDS, outlier, outlier_batch
from models.ood.photos import FACES, crops, photo_set, server_preprocess
from models.ood.pixels import PIXEL_NAMES, pixel_statistics
from models.preprocess import normalize
from models.zoo import assets
from models.zoo.registry import prepare_for_serving, tiny_entry


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


# ------------------------------------------------------------------ the exposure score

MEAN, STD = [0.42, 0.418, 0.415], [0.234, 0.231, 0.232]


def _normalized(rgb: np.ndarray) -> torch.Tensor:
    """Pictures in [0, 1], float [B, H, W, 3] -> the network's normalized input."""
    x = torch.tensor(rgb, dtype=torch.float32).permute(0, 3, 1, 2)
    return (x - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)


def _logit(p: float) -> float:
    p = min(max(p, 1e-4), 1 - 1e-4)
    return float(np.log(p / (1 - p)))


def test_pixel_statistics_by_hand() -> None:
    n = 32
    ramp = np.repeat((np.arange(n) * 0.03)[None, :, None], n, axis=0) * np.ones(3)  # grey, 0.03 per column
    red_green = np.zeros((n, n, 3))
    red_green[:, : n // 2, 0] = 1.0  # left red, right green: the same luminance, only the hue steps
    red_green[:, n // 2:, 1] = 1.0
    black = np.zeros((n, n, 3))
    stats = pixel_statistics(_normalized(np.stack([ramp, red_green, black])), MEAN, STD)
    assert stats.shape == (3, len(PIXEL_NAMES))
    col = {name: stats[:, i] for i, name in enumerate(PIXEL_NAMES)}
    # The grey ramp: no colour detail at all, every step along the pixel's own (grey) colour.
    assert col["chroma_hf_1"][0] == pytest.approx(_logit(0.0), abs=1e-3)
    assert col["shading_1"][0] == pytest.approx(_logit(1.0), abs=1e-3)
    assert col["chroma_variance"][0] == pytest.approx(0.0, abs=1e-6)
    # Its steps: n * (n - 1) horizontal ones of 0.03 (bin 0.02-0.04), as many vertical ones of 0.
    assert col["gradient3_1"][0] == pytest.approx(_logit(0.5), abs=1e-3)
    assert col["gradient0_1"][0] == pytest.approx(_logit(0.5), abs=1e-3)
    # Red | green: the step (-1, 1, 0) is orthogonal to the colour it is taken at, (1, 1, 0) / 2,
    # and luminance does not change, so all fine detail is colour.
    assert col["shading_1"][1] == pytest.approx(_logit(0.0), abs=1e-3)
    assert col["chroma_hf_1"][1] == pytest.approx(_logit(1.0), abs=1e-3)
    assert col["mean_saturation"][1] == pytest.approx(1.0 / (1 + 1e-3), abs=1e-4)
    # Black: every pixel dark, none bright, no power in any band.
    assert col["dark"][2] == pytest.approx(_logit(1.0), abs=1e-3)
    assert col["bright"][2] == pytest.approx(_logit(0.0), abs=1e-3)
    assert col["spectrum0"][2] == pytest.approx(np.log(1e-12), abs=1e-3)


def test_committee_is_the_mean_of_its_members_two_layer_networks() -> None:
    rng = np.random.default_rng(0)
    m, h, d = 3, 5, 4
    fitted = HeadFit(rng.normal(size=d), rng.uniform(1, 2, size=d), rng.normal(size=(m, h, d)),
                     rng.normal(size=(m, h)), rng.normal(size=(m, h)), rng.normal(size=m))
    x = rng.normal(size=(7, d))
    expected = np.zeros(7)
    for k in range(m):
        first, last = torch.nn.Linear(d, h).double(), torch.nn.Linear(h, 1).double()
        net = torch.nn.Sequential(first, torch.nn.ReLU(), last)
        with torch.no_grad():
            first.weight.copy_(torch.tensor(fitted.w1[k]))
            first.bias.copy_(torch.tensor(fitted.b1[k]))
            last.weight.copy_(torch.tensor(fitted.w2[k][None]))
            last.bias.copy_(torch.tensor(fitted.b2[k:k + 1]))
            expected += net(torch.tensor((x - fitted.centre) / fitted.scale))[:, 0].numpy() / m
    np.testing.assert_allclose(committee(fitted, x), expected, rtol=1e-10)


def test_head_training_separates_and_repeats_and_leaves_the_random_state_alone() -> None:
    rng = np.random.default_rng(1)
    familiar, outliers = rng.normal(size=(400, 4)), rng.normal(size=(300, 4)) + 3
    torch.manual_seed(123)
    first = train_head(familiar, outliers, steps=60)
    after = torch.rand(1)
    torch.manual_seed(123)
    assert torch.equal(after, torch.rand(1))  # the caller's stream goes on as if no training had run
    second = train_head(familiar, outliers, steps=60)
    np.testing.assert_array_equal(first.w1, second.w1)
    assert first.w1.shape == (MEMBERS, HIDDEN, 4)
    fresh_familiar, fresh_outliers = rng.normal(size=(200, 4)), rng.normal(size=(200, 4)) + 3
    assert auroc(committee(first, fresh_familiar), committee(first, fresh_outliers)) > 0.99


def test_references_pool_the_classes_with_too_few_pictures() -> None:
    values = np.arange(130.0)[::-1]
    predicted = np.r_[np.zeros(60, int), np.ones(70, int) * 2]  # class 1 never, 0 and 2 often enough
    refs = references(values, predicted, 3)
    np.testing.assert_array_equal(refs[0], np.sort(values[:60]))
    np.testing.assert_array_equal(refs[1], np.sort(values))
    np.testing.assert_array_equal(refs[2], np.sort(values[60:]))
    few = references(values[:10], predicted[:10], 3)
    assert all(np.array_equal(r, np.sort(values[:10])) for r in few)


def test_exposure_is_the_per_class_surprise_of_the_head_and_reuses_the_served_pass(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = prepare_for_serving(MiniAlexNet(NetConfig(widths=(8, 8, 8, 8, 8), hidden=16)))
    g = torch.Generator().manual_seed(2)
    familiar = [torch.rand(60, 3, 64, 64, generator=g) * 0.5 for _ in range(5)]
    seen = [evidence(net, x) for x in familiar]
    base = combined_stats(seen[0], seen[0].logits.argmax(1), seen[1], seen[2], 95.0, "sha")
    far = torch.rand(60, 3, 64, 64, generator=g) * 8 + 3
    fitted = train_head(head_inputs(base, familiar[3], seen[3], MEAN, STD),
                        head_inputs(base, far, evidence(net, far), MEAN, STD), steps=80)
    calibration = head_inputs(base, familiar[4], seen[4], MEAN, STD)
    stats = exposure_stats(base, fitted, calibration, seen[4].logits, MEAN, STD, 99.0)
    assert stats.method == "exposure" and served_layers(stats) == COMBINED_LAYERS
    assert stats.threshold == pytest.approx(-np.log(0.01))
    # The score, rebuilt from its parts: pixel statistics and the combined score, the head's
    # committee, then the surprise against the predicted class's reference values.
    x = torch.cat([familiar[0][:5], far[:5]])
    ev = evidence(net, x)
    inputs = np.concatenate([pixel_statistics(x, MEAN, STD), combined(base, ev)[:, None]], axis=1)
    value = committee(fitted, inputs)
    head = stats.head
    assert head is not None and head.names == HEAD_INPUTS
    pred = ev.logits.argmax(1)
    expected = [surprise(head.reference[k], value[i:i + 1])[0] for i, k in enumerate(pred)]
    np.testing.assert_allclose(score_batch(stats, net, x), expected, rtol=1e-9)
    stats.save(tmp_path / "x.npz")
    loaded = type(stats).load(tmp_path / "x.npz")
    np.testing.assert_allclose(score_batch(loaded, net, x), expected, rtol=1e-9)
    assert loaded.head is not None
    assert all(np.array_equal(a, b) for a, b in zip(loaded.head.reference, head.reference, strict=True))
    one = far[0]
    with torch.inference_mode(), capture(net, COMBINED_LAYERS) as maps:
        served = net(one.unsqueeze(0))[0].numpy()
    reused = assess(loaded, net, one, served, {k: v[0] for k, v in maps.items()})
    assert reused == assess(loaded, net, one)
    assert reused["threshold"] == pytest.approx(-np.log(0.01), abs=1e-4)
    scores_, logits = scores_and_logits(loaded, net, x)
    np.testing.assert_allclose(scores_, expected, rtol=1e-9)
    np.testing.assert_array_equal(logits.argmax(1), pred)


def test_outliers_are_seeded_pictures_of_every_kind() -> None:
    batch = outlier_batch(5, 0, len(KINDS) * 2, 48)
    assert batch.shape == (len(KINDS) * 2, 48, 48, 3) and batch.dtype == np.uint8
    np.testing.assert_array_equal(outlier(5, 3, 48), batch[3])  # same arguments, same pixels
    assert not np.array_equal(outlier(6, 3, 48), batch[3])
    assert all(batch[i].std() > 0 for i in range(len(batch)))  # none blank
    assert outlier_batch(5, 0, 0, 48).shape == (0, 48, 48, 3)


def test_photos_are_preprocessed_as_the_server_does() -> None:
    entry = tiny_entry()
    assert entry.preprocess is not None
    picture = Image.fromarray(np.random.default_rng(0).integers(0, 256, (90, 150, 3), dtype=np.uint8))
    ours = server_preprocess(entry.input_size, entry.mean, entry.std)(picture)
    assert torch.equal(ours, entry.preprocess(picture))
    rng = np.random.default_rng(1)
    cut = crops(picture, 20, rng, 0.15)
    sides = [c.size[0] for c in cut]
    assert all(c.size[0] == c.size[1] for c in cut) and min(sides) >= int(90 * 0.15) and max(sides) <= 90


# A world seed no job draws from (models/world/seeds.py), and a stream for the photo crops.
CHECK_WORLD = 6007
CHECK_CROPS = 7


def test_the_shipped_score_flags_real_photos_and_spares_generated_pictures() -> None:
    """The target, counted: at least 95 % of real-photo samples (each photo scikit-image and
    matplotlib ship, whole and as 10 crops, and 100 LFW faces) flagged; at most 2 % of 2,200
    fresh generated pictures, and at most 5 % of any one class's 200."""
    entry = tiny_entry()
    stats = assets.ood_stats(entry.weights_source)
    assert entry.network is not None and stats is not None and stats.method == "exposure"
    photos = photo_set(server_preprocess(entry.input_size, entry.mean, entry.std), 10, seed=CHECK_CROPS)
    assert len(photos) >= 20 and len(photos[FACES]) == 100
    flagged = {name: score_batch(stats, entry.network, x) > stats.threshold for name, x in photos.items()}
    every = np.concatenate(list(flagged.values()))
    assert every.mean() >= 0.95, {name: float(f.mean()) for name, f in flagged.items()}
    assert all(f[0] for name, f in flagged.items() if name != FACES)  # every whole photo
    hits = np.zeros(len(world.CLASSES), dtype=int)
    total = 0
    for start in range(0, 2200, 275):
        x, y, _ = world.generate_batch(CHECK_WORLD, start, 275, entry.input_size)
        flags = score_batch(stats, entry.network, normalize(x, list(entry.mean), list(entry.std))) > stats.threshold
        np.add.at(hits, y, flags)
        total += len(y)
    assert hits.sum() <= 0.02 * total, hits
    assert (hits <= 0.05 * (total // len(world.CLASSES))).all(), dict(zip(world.CLASSES, hits, strict=True))

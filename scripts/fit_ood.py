"""Fit the tiny model's unfamiliar-input scores and measure them; nothing else is touched.

    .venv/bin/python -m scripts.fit_ood             # fit every score, ship ``exposure``, measure
    .venv/bin/python -m scripts.fit_ood --no-measure

Writes models/weights/explain/ood.npz (the shipped score), ood-<method>.npz (the others, for
comparison) and only the ``ood`` and ``ood_measurement`` sections of metrics.json (every
other section is kept as it was). Measuring needs scikit-image (its bundled photos) and
matplotlib. scripts/precompute_explain.py calls the same ``make_ood`` and ``measure_ood``.
"""

from __future__ import annotations

import argparse
import io
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from models import ood, world
from models.ood.exposure import MIN_CLASS_REFERENCE
from models.ood.outliers import outlier_batch
from models.ood.photos import FACES, server_preprocess
from models.preprocess import normalize
from models.world import seeds
from models.zoo.assets import OOD_FILE
from models.zoo.tinyweights import WEIGHTS_DIR, frozen_for_assets

# The shipped method first; the others are written beside it (ood-<method>.npz) for comparison.
OOD_METHODS = ("exposure", "combined", "energy", "mahalanobis")
CHUNK = 256  # pictures per forward pass while fitting and measuring
JPEG_QUALITY = (60, 96)  # the head's JPEG-compressed pictures: quality drawn from this range
RESIZED = (1.2, 2.5)  # the head's resized pictures are drawn at this many times the input size
CROPS_RANDOM = 0  # the random stream the measured photo crops are drawn from


def jpeg(picture: np.ndarray, quality: int) -> np.ndarray:
    """uint8 [H, W, 3] through a JPEG file of ``quality`` (4:2:0 colour, as most photos are)."""
    buffer = io.BytesIO()
    Image.fromarray(picture).save(buffer, format="JPEG", quality=quality)
    with Image.open(buffer) as image:
        return np.array(image.convert("RGB"))


def familiar_chunks(seed: int, count: int, meta: dict[str, Any]) -> Iterator[torch.Tensor]:
    """Generated pictures of ``seed`` as the network's inputs, in chunks: picture i as drawn
    when i % 3 == 0, JPEG-compressed when 1, drawn larger and resized by the server's
    preprocessing when 2 (the draws of quality and size come from ``seed``'s own stream)."""
    size, rng = int(meta["input_size"]), np.random.default_rng(seed)
    preprocess = server_preprocess(size, meta["mean"], meta["std"])
    for start in range(0, count, CHUNK):
        batch = []
        for i in range(start, min(start + CHUNK, count)):
            if i % 3 == 2:
                big = world.generate(seed, i, int(size * rng.uniform(*RESIZED))).image
                batch.append(preprocess(Image.fromarray(big)))
                continue
            picture = world.generate(seed, i, size).image
            picture = jpeg(picture, int(rng.integers(*JPEG_QUALITY))) if i % 3 == 1 else picture
            batch.append(normalize(picture[None], meta["mean"], meta["std"])[0])
        yield torch.stack(batch)


def outlier_chunks(seed: int, count: int, meta: dict[str, Any], compress: bool = True) -> Iterator[torch.Tensor]:
    """Synthetic outliers of ``seed`` as the network's inputs; every third JPEG-compressed."""
    size, rng = int(meta["input_size"]), np.random.default_rng(seed)
    for start in range(0, count, CHUNK):
        pictures = outlier_batch(seed, start, min(CHUNK, count - start), size)
        if compress:
            pictures = np.stack([jpeg(p, int(rng.integers(*JPEG_QUALITY))) if (start + i) % 3 == 1 else p
                                 for i, p in enumerate(pictures)])
        yield normalize(pictures, meta["mean"], meta["std"])


def world_chunks(seed: int, count: int, meta: dict[str, Any]) -> Iterator[torch.Tensor]:
    """Generated pictures of ``seed`` as drawn, the network's inputs, in chunks."""
    for start in range(0, count, CHUNK):
        x, _, _ = world.generate_batch(seed, start, min(CHUNK, count - start), int(meta["input_size"]))
        yield normalize(x, meta["mean"], meta["std"])


def head_data(net: torch.nn.Module, base: ood.OODStats, chunks: Iterator[torch.Tensor],
              meta: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """The head's inputs [N, D] and the logits [N, K] of every picture the chunks hold."""
    inputs, logits = [], []
    for batch in chunks:
        seen = ood.evidence(net, batch)
        inputs.append(ood.head_inputs(base, batch, seen, meta["mean"], meta["std"]))
        logits.append(seen.logits)
    return np.concatenate(inputs), np.concatenate(logits)


def make_ood(net: torch.nn.Module, meta: dict[str, Any], out: Path, sha: str, fit_n: int, cal_n: int,
             percentile: float = 97.5, method: str = OOD_METHODS[0], head_percentile: float = 99.0) -> dict[str, Any]:
    """Fit every OOD score; ship ``method`` as ood.npz, keep the others as ood-<name>.npz.

    energy, mahalanobis, combined: ``fit_n`` pictures of OOD_FIT, ``cal_n`` of OOD_CALIBRATION
    and of OOD_THRESHOLD, one threshold (``percentile``). exposure: the combined score's
    statistics, a head trained on 1.5 x ``fit_n`` pictures of OOD_HEAD against as many
    outliers of OOD_OUTLIERS, calibrated per class on 2 x ``fit_n`` pictures of OOD_THRESHOLD
    (``head_percentile``)."""
    size, t0 = meta["input_size"], time.perf_counter()
    fit_x, fit_y, _ = world.generate_batch(seeds.OOD_FIT, 0, fit_n, size)
    cal_x, _, _ = world.generate_batch(seeds.OOD_CALIBRATION, 0, cal_n, size)
    thr_x, _, _ = world.generate_batch(seeds.OOD_THRESHOLD, 0, cal_n, size)

    def batched(fn: Callable[[torch.Tensor], Any], x: np.ndarray) -> list[Any]:
        return [fn(normalize(x[i:i + 128], meta["mean"], meta["std"])) for i in range(0, len(x), 128)]

    feats = np.concatenate(batched(lambda b: ood.features(net, b), fit_x))
    cal = np.concatenate(batched(lambda b: ood.features(net, b), cal_x))
    made = {"mahalanobis": ood.calibrate(ood.fit(feats, fit_y), cal, percentile, sha)}
    made["energy"] = ood.energy_stats(np.concatenate(batched(lambda b: ood.energy(net, b), cal_x)), percentile, sha)

    def seen(x: np.ndarray) -> ood.Evidence:
        return ood.Evidence.concat(batched(lambda b: ood.evidence(net, b), x))

    made["combined"] = ood.combined_stats(seen(fit_x), fit_y, seen(cal_x), seen(thr_x), percentile, sha)
    head_n = fit_n * 3 // 2
    familiar, _ = head_data(net, made["combined"], familiar_chunks(seeds.OOD_HEAD, head_n, meta), meta)
    outliers, _ = head_data(net, made["combined"], outlier_chunks(seeds.OOD_OUTLIERS, head_n, meta), meta)
    fitted = ood.train_head(familiar, outliers)
    reference, logits = head_data(net, made["combined"], world_chunks(seeds.OOD_THRESHOLD, 2 * fit_n, meta), meta)
    made["exposure"] = ood.exposure_stats(made["combined"], fitted, reference, logits, meta["mean"], meta["std"],
                                          head_percentile)
    for name, stats in made.items():
        stats.save(out / (OOD_FILE if name == method else f"ood-{name}.npz"))
    print(f"ood: {method} threshold {made[method].threshold:.3f} in {time.perf_counter() - t0:.0f} s", flush=True)
    return {"method": method, "percentile": made[method].percentile, "threshold": made[method].threshold,
            "fit_images": fit_n, "fit_seed": seeds.OOD_FIT, "calibration_images": cal_n,
            "calibration_seed": seeds.OOD_CALIBRATION, "threshold_seed": seeds.OOD_THRESHOLD,
            "gram_layers": list(ood.GRAM_LAYERS), "gram_powers": list(ood.GRAM_POWERS),
            "parts_layer": ood.PARTS_LAYER, "other_percentile": percentile,
            "head": {"familiar_images": head_n, "familiar_seed": seeds.OOD_HEAD, "outliers": head_n,
                     "outlier_seed": seeds.OOD_OUTLIERS, "reference_images": 2 * fit_n,
                     "reference_seed": seeds.OOD_THRESHOLD, "inputs": list(ood.HEAD_INPUTS),
                     "members": int(fitted.w1.shape[0]), "hidden": int(fitted.w1.shape[1])}}


def jpeg_chunks(seed: int, count: int, meta: dict[str, Any]) -> Iterator[torch.Tensor]:
    """Generated pictures of ``seed`` JPEG-compressed (quality 70-95): a user's saved copy."""
    rng = np.random.default_rng(seed)
    for start in range(0, count, CHUNK):
        x, _, _ = world.generate_batch(seed, start, min(CHUNK, count - start), int(meta["input_size"]))
        x = np.stack([jpeg(p, int(rng.integers(70, 96))) for p in x])
        yield normalize(x, meta["mean"], meta["std"])


def resized_chunks(seed: int, count: int, meta: dict[str, Any]) -> Iterator[torch.Tensor]:
    """Generated pictures of ``seed`` drawn at 1.2-2.5 x the input size, resized by the server."""
    size, rng = int(meta["input_size"]), np.random.default_rng(seed)
    preprocess = server_preprocess(size, meta["mean"], meta["std"])
    for start in range(0, count, CHUNK):
        yield torch.stack([preprocess(Image.fromarray(world.generate(seed, i, int(size * rng.uniform(*RESIZED))).image))
                           for i in range(start, min(start + CHUNK, count))])


def clean_chunks(seed: int, count: int, meta: dict[str, Any]) -> Iterator[torch.Tensor]:
    """Generated pictures of ``seed`` without blur and noise, as the page's gallery shows them."""
    size = int(meta["input_size"])
    for start in range(0, count, CHUNK):
        x = np.stack([world.generate(seed, i, size, post=False).image for i in range(start, min(start + CHUNK, count))])
        yield normalize(x, meta["mean"], meta["std"])


def scored(stats: ood.OODStats, net: torch.nn.Module, chunks: Iterator[torch.Tensor]) -> tuple[np.ndarray, np.ndarray]:
    """Scores [N] and predicted classes [N] of every picture the chunks hold (one pass each)."""
    pairs = [ood.scores_and_logits(stats, net, batch) for batch in chunks]
    return np.concatenate([s for s, _ in pairs]), np.concatenate([lg for _, lg in pairs]).argmax(1)


def share(flags: np.ndarray) -> float:
    return round(float(np.mean(flags)), 4) if len(flags) else 0.0


def summary(flag: Callable[[np.ndarray, np.ndarray], np.ndarray], sets: dict[str, tuple[np.ndarray, np.ndarray]],
            photos: dict[str, tuple[np.ndarray, np.ndarray]], labels: np.ndarray, classes: list[str]) -> dict[str, Any]:
    """Flagged shares and AUROCs of one score: ``flag(scores, predicted)`` says which are flagged."""
    familiar, _ = sets["generated"]
    flagged = {name: flag(*pair) for name, pair in sets.items()}
    per_photo = {name: flag(*pair) for name, pair in photos.items()}
    real = [n for n in photos if n != FACES]
    crops = np.concatenate([per_photo[n][1:] for n in real])
    per_class = {c: share(flagged["generated"][labels == k]) for k, c in enumerate(classes)}
    every = np.concatenate(list(per_photo.values()))
    return {
        "generated_flagged": share(flagged["generated"]), "generated_flagged_per_class": per_class,
        "generated_flagged_max_class": max(per_class.values()),
        "photo_samples_flagged": share(every), "whole_photos_flagged": share(np.array([per_photo[n][0] for n in real])),
        "photo_crops_flagged": share(crops), "lfw_faces_flagged": share(per_photo.get(FACES, np.zeros(0))),
        "auroc_photo_crops": ood.auroc(familiar, np.concatenate([photos[n][0] for n in real])),
        "auroc_lfw_faces": ood.auroc(familiar, photos[FACES][0]) if FACES in photos else None,
        **{f"{name}_flagged": share(f) for name, f in flagged.items() if name != "generated"},
        "per_photo_flagged": {n: share(f) for n, f in per_photo.items()},
        "per_photo_auroc": {n: round(ood.auroc(familiar, photos[n][0]), 4) for n in photos},
    }


def per_class_thresholds(scores: np.ndarray, predicted: np.ndarray, classes: int, percentile: float) -> np.ndarray:
    """One threshold per predicted class (all pictures' percentile where a class has few)."""
    pooled = float(np.percentile(scores, percentile))
    return np.array([float(np.percentile(scores[predicted == k], percentile))
                     if (predicted == k).sum() >= MIN_CLASS_REFERENCE else pooled for k in range(classes)])


def above(thresholds: np.ndarray) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """Flags: a score above its threshold (one for all, or one per predicted class)."""
    def flag(scores: np.ndarray, predicted: np.ndarray) -> np.ndarray:
        return np.asarray(scores > (thresholds[predicted] if thresholds.ndim else thresholds))
    return flag


def measure_ood(net: torch.nn.Module, meta: dict[str, Any], out: Path, test_n: int, extra_n: int = 550,
                crops_per_photo: int = 30, reference_n: int = 4400) -> dict[str, Any]:
    """Every score on generated test pictures (familiar) against real photos (unfamiliar), and
    the share flagged of generated pictures saved as JPEG, drawn larger and resized, drawn
    without blur and noise, and of held-out synthetic outliers. ``combined_per_class``: the
    combined score with one threshold per predicted class (99th percentile of ``reference_n``
    pictures of OOD_THRESHOLD)."""
    from models.ood.photos import photo_set

    classes = list(meta["classes"])
    labels = np.arange(test_n) % len(classes)  # world.generate: picture i is of class i % classes
    photos = photo_set(server_preprocess(int(meta["input_size"]), meta["mean"], meta["std"]), crops_per_photo,
                       seed=CROPS_RANDOM)
    makers: dict[str, Callable[[], Iterator[torch.Tensor]]] = {
        "generated": lambda: world_chunks(seeds.OOD_TEST, test_n, meta),
        "jpeg_world": lambda: jpeg_chunks(seeds.OOD_TEST, extra_n, meta),
        "resized_world": lambda: resized_chunks(seeds.OOD_TEST, extra_n, meta),
        "clean_world": lambda: clean_chunks(seeds.OOD_TEST, extra_n, meta),
        "synthetic_outliers": lambda: outlier_chunks(seeds.OOD_OUTLIERS_TEST, extra_n, meta, compress=False),
    }
    result: dict[str, Any] = {
        "generated_test_images": test_n, "generated_seed": seeds.OOD_TEST, "extra_images": extra_n,
        "synthetic_seed": seeds.OOD_OUTLIERS_TEST, "real_photos": len(photos) - 1,
        "real_photo_names": [n for n in photos if n != FACES], "crops_per_photo": crops_per_photo,
        "smallest_crop": 0.15, "lfw_faces": len(photos[FACES]),
        "photo_samples": sum(len(x) for x in photos.values()),
    }
    shipped = ood.OODStats.load(out / OOD_FILE).method
    for method in OOD_METHODS:
        stats = ood.OODStats.load(out / (OOD_FILE if method == shipped else f"ood-{method}.npz"))
        sets = {name: scored(stats, net, make()) for name, make in makers.items()}
        by_photo = {name: scored(stats, net, iter([x])) for name, x in photos.items()}
        result[method] = {"threshold": stats.threshold, **summary(above(np.asarray(stats.threshold)), sets, by_photo,
                                                                  labels, classes)}
        if method == "combined":
            reference = scored(stats, net, world_chunks(seeds.OOD_THRESHOLD, reference_n, meta))
            thresholds = per_class_thresholds(*reference, len(classes), 99.0)
            result["combined_per_class"] = {"thresholds": thresholds.round(4).tolist(), **summary(
                above(thresholds), sets, by_photo, labels, classes)}
        print(f"ood {method}: generated {result[method]['generated_flagged']:.3f} "
              f"photos {result[method]['photo_samples_flagged']:.3f}", flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weights-dir", default=str(WEIGHTS_DIR))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--method", choices=OOD_METHODS, default=OOD_METHODS[0], help="the score to ship")
    p.add_argument("--percentile", type=float, default=97.5, help="energy, mahalanobis, combined: threshold")
    p.add_argument("--head-percentile", type=float, default=99.0, help="exposure: per-class threshold")
    p.add_argument("--no-measure", action="store_true", help="fit only (measuring needs scikit-image)")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    weights = Path(a.weights_dir)
    net, meta, sha, out = frozen_for_assets(weights)
    path = out / "metrics.json"
    metrics: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    if metrics.get("weights_sha256") != sha:
        metrics = {"weights_sha256": sha}
    metrics["ood"] = make_ood(net, meta, out, sha, 2200, 550, a.percentile, a.method, a.head_percentile)
    if not a.no_measure:
        metrics["ood_measurement"] = measure_ood(net, meta, out, 2200)
    path.write_text(json.dumps(metrics, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

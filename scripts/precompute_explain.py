"""Precompute the tiny model's shipped explanations; rerun after every retraining.

    .venv/bin/python -m scripts.precompute_explain            # everything
    .venv/bin/python -m scripts.precompute_explain --only ood  # one part

Writes into models/weights/explain/ (see models/explain/assets.py for the layout):
feature visualizations of every unit of conv2-conv5 (one PNG sprite per layer), the
top-9 patches of every unit over generated images (one JPEG sprite per layer), the
unfamiliar-input statistics (ood.npz, by scripts/fit_ood.py's ``make_ood``; that script alone
refits them and touches nothing else) and metrics.json with the numbers the README quotes
(feature-vis share, Grad-CAM inside/outside ratio, timings; the OOD scores on real photos
with ``--measure-ood``, which needs scikit-image).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from models import world
from models.capture import gradient_from
from models.explain.featvis import VisConfig, centre_activation, visualize
from models.explain.gradcam import gradcam
from models.explain.patches import strongest, top_patches
from models.explain.render import atlas, resize_map, untile
from models.geometry import Geometry
from models.layers import describe_layers
from models.preprocess import normalize
from models.units import unit_count
from models.world import seeds
from models.zoo.assets import INDEX_FILE
from models.zoo.tinyweights import WEIGHTS_DIR, frozen_for_assets
from scripts.fit_ood import OOD_METHODS, make_ood, measure_ood

LAYERS = ("features.4", "features.7", "features.9", "features.11")  # conv2..conv5 after ReLU


def make_featvis(net: torch.nn.Module, meta: dict[str, Any], out: Path, steps: int,
                 index: dict[str, Any], best100: dict[str, np.ndarray] | None,
                 on_layer: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    metrics: dict[str, Any] = {}
    for layer in LAYERS:
        t0 = time.perf_counter()
        units = unit_count(net, meta["input_size"], layer)
        images = visualize(net, layer, list(range(units)), meta["mean"], meta["std"], VisConfig(steps=steps))
        grid, columns = atlas(images)
        file = f"featvis-{layer}.png"
        Image.fromarray(grid).save(out / file, optimize=True)
        acts = centre_activation(net, layer, list(range(units)), images, meta["mean"], meta["std"])
        index["featvis"][layer] = {
            "file": file, "columns": columns, "tile": [images.shape[1], images.shape[2]], "units": units,
            "activation": [round(float(a), 4) for a in acts],
        }
        seconds = time.perf_counter() - t0
        metrics[layer] = {"units": units, "seconds": round(seconds, 1), "bytes": (out / file).stat().st_size}
        if best100 is not None:
            beats = acts > best100[layer]
            metrics[layer]["share_above_best_of_100_images"] = round(float(beats.mean()), 4)
        print(f"featvis {layer}: {units} units in {seconds:.0f} s", metrics[layer], flush=True)
        if on_layer is not None:
            on_layer(metrics)  # keep finished layers even if a later one is interrupted
    return metrics


def make_patches(net: torch.nn.Module, meta: dict[str, Any], out: Path, count: int,
                 index: dict[str, Any]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    t0 = time.perf_counter()
    images, _labels, _ = world.generate_batch(seeds.PATCHES, 0, count, meta["input_size"])
    print(f"generated {count} images in {time.perf_counter() - t0:.0f} s", flush=True)
    geometry = describe_layers(net, meta["input_size"])
    metrics: dict[str, Any] = {"images": count, "world_seed": seeds.PATCHES}
    best100: dict[str, np.ndarray] = {}
    for layer in LAYERS:
        info = geometry[layer]
        top = top_patches(net, layer, Geometry(info.receptive_field, info.stride, info.offset), images,
                          meta["mean"], meta["std"], k=9, tile=32)
        units, k = top.patches.shape[:2]
        grid, _ = atlas(top.patches.reshape(units * k, 32, 32, 3), columns=k)
        file = f"patches-{layer}.jpg"
        Image.fromarray(grid).save(out / file, quality=88, optimize=True)
        index["patches"][layer] = {
            "file": file, "columns": k, "tile": [32, 32], "units": units, "k": k,
            "receptive_field": info.receptive_field,
            "values": [[round(float(v), 4) for v in row] for row in top.values],
            "images": top.images.tolist(),
        }
        best100[layer] = top.best[:100].max(axis=0)
        metrics[layer] = {"bytes": (out / file).stat().st_size}
        print(f"patches {layer}: {units} units", flush=True)
    return metrics, best100


def cam_parts(net: torch.nn.Module, x: torch.Tensor, layer: str) -> dict[str, np.ndarray]:
    """Why Grad-CAM does or does not localize at ``layer``, as maps [h, w] for the top class:
    the channels Grad-CAM weights positively (evidence for), those it weights negatively
    (evidence against, summed with the sign flipped), and the position-wise gradient x
    activation (no spatial averaging of the gradient)."""
    with gradient_from(net, layer) as leaf:
        logits = net(x[None])
        (grads,) = torch.autograd.grad(logits[0, int(logits[0].argmax())], leaf["activations"])
    acts, grads = leaf["activations"].detach()[0], grads[0]
    alpha = grads.mean(dim=(1, 2))
    return {"for": (alpha.clamp(min=0)[:, None, None] * acts).sum(0).numpy(),
            "against": ((-alpha).clamp(min=0)[:, None, None] * acts).sum(0).numpy(),
            "gradient_x_activation": (grads * acts).sum(0).clamp(min=0).numpy()}


def measure_cam(net: torch.nn.Module, meta: dict[str, Any], count: int,
                layers: tuple[str, ...] = ("features.11", "features.9", "features.7")) -> dict[str, Any]:
    """Mean Grad-CAM (top class) inside the object mask over outside it, per layer; for the
    first layer also the inside/outside ratios of Grad-CAM's parts (see ``cam_parts``)."""
    inside: dict[str, list[float]] = {layer: [] for layer in layers}
    outside: dict[str, list[float]] = {layer: [] for layer in layers}
    part_ratio: dict[str, list[tuple[float, float]]] = {}
    seconds: list[float] = []
    for i in range(count):
        s = world.generate(seeds.GRADCAM, i, meta["input_size"])
        if not s.object_mask.any() or s.object_mask.all():
            continue
        x = normalize(s.image[None], meta["mean"], meta["std"])[0]
        for layer in layers:
            t0 = time.perf_counter()
            cam, _ = gradcam(net, x, layer)
            if layer == layers[0]:
                seconds.append(time.perf_counter() - t0)
            big = resize_map(cam, *s.object_mask.shape)
            inside[layer].append(float(big[s.object_mask].mean()))
            outside[layer].append(float(big[~s.object_mask].mean()))
        for name, part in cam_parts(net, x, layers[0]).items():
            big = resize_map(part / max(float(part.max()), 1e-9), *s.object_mask.shape)
            pair = (float(big[s.object_mask].mean()), float(big[~s.object_mask].mean()))
            part_ratio.setdefault(name, []).append(pair)
    median_ms = round(1000 * float(np.median(seconds)), 2)
    result: dict[str, Any] = {"images": len(seconds), "seed": seeds.GRADCAM, "median_ms": median_ms}
    for layer in layers:
        ins, outs = np.array(inside[layer]), np.array(outside[layer])
        result[layer] = {"mean_inside": float(ins.mean()), "mean_outside": float(outs.mean()),
                         "ratio": float(ins.mean() / max(outs.mean(), 1e-9)),
                         "share_images_inside_gt_outside": float((ins > outs).mean())}
    result["parts"] = {"layer": layers[0], **{
        name: {"ratio": float(np.mean([a for a, _ in v])) / max(float(np.mean([b for _, b in v])), 1e-9),
               "share_images_inside_gt_outside": float(np.mean([a > b for a, b in v]))}
        for name, v in part_ratio.items()}}
    print("gradcam", json.dumps(result), flush=True)
    return result


def shrink_featvis(out: Path, index: dict[str, Any]) -> None:
    """Re-save the feature-vis sprites with a 256-colour palette (about half the bytes)."""
    for meta in index["featvis"].values():
        path = out / meta["file"]
        with Image.open(path) as image:
            if image.mode == "P":
                continue
            quantized = image.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
        quantized.save(path, optimize=True)


def verify_featvis(net: torch.nn.Module, meta: dict[str, Any], out: Path, index: dict[str, Any]) -> dict[str, Any]:
    """The share of units whose shipped picture beats the best of 100 generated images."""
    images, _, _ = world.generate_batch(seeds.PATCHES, 0, 100, meta["input_size"])
    result: dict[str, Any] = {"images": 100, "world_seed": seeds.PATCHES}
    wins = total = size = 0
    for layer, entry in index["featvis"].items():
        with Image.open(out / entry["file"]) as image:
            sprite = np.asarray(image.convert("RGB"))
        tile = (int(entry["tile"][0]), int(entry["tile"][1]))
        tiles = np.stack([untile(sprite, tile, entry["columns"], c) for c in range(entry["units"])])
        acts = centre_activation(net, layer, range(entry["units"]), tiles, meta["mean"], meta["std"])
        best, _, _ = strongest(net, layer, images, meta["mean"], meta["std"])
        beats = acts > best.max(axis=0)
        entry["activation"] = [round(float(a), 4) for a in acts]
        result[layer] = {"share": round(float(beats.mean()), 4), "bytes": (out / entry["file"]).stat().st_size,
                         "median_ratio": round(float(np.median(acts / np.maximum(best.max(axis=0), 1e-6))), 3)}
        wins, total, size = wins + int(beats.sum()), total + entry["units"], size + result[layer]["bytes"]
    result.update({"share": round(wins / max(total, 1), 4), "units": total, "bytes": size})
    print("featvis shipped", json.dumps(result), flush=True)
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weights-dir", default=str(WEIGHTS_DIR))
    p.add_argument("--only", default="patches,featvis,shrink,verify,ood,cam", help="comma-separated parts")
    p.add_argument("--measure-ood", action="store_true", help="the scores on real photos (needs scikit-image)")
    p.add_argument("--images", type=int, default=2000, help="generated images for top patches")
    p.add_argument("--steps", type=int, default=160, help="optimization steps per feature visualization")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--ood-method", choices=OOD_METHODS, default=OOD_METHODS[0], help="the score to ship")
    # 97.5 since the no-BatchNorm retrain: at 99 none of the page's real sample photos was flagged.
    p.add_argument("--ood-percentile", type=float, default=97.5,
                   help="energy, mahalanobis, combined: this percentile of generated images' scores")
    p.add_argument("--ood-head-percentile", type=float, default=99.0, help="exposure: the per-class percentile")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    weights = Path(a.weights_dir)
    net, meta, sha, out = frozen_for_assets(weights)
    index_path, metrics_path = out / INDEX_FILE, out / "metrics.json"
    index: dict[str, Any] = json.loads(index_path.read_text()) if index_path.exists() else {}
    if index.get("weights_sha256") != sha:
        index = {}
    index.update({"weights_sha256": sha, "layers": list(LAYERS)})
    index.setdefault("featvis", {})
    index.setdefault("patches", {})
    metrics: dict[str, Any] = json.loads(metrics_path.read_text()) if metrics_path.exists() else {}
    if metrics.get("weights_sha256") != sha:
        metrics = {"weights_sha256": sha}
    parts = set(a.only.split(","))

    def save() -> None:
        index_path.write_text(json.dumps(index, separators=(",", ":")) + "\n")
        metrics_path.write_text(json.dumps(metrics, indent=1) + "\n")

    # Quick parts first, so an interrupted run still leaves the most useful files.
    if "ood" in parts:
        metrics["ood"] = make_ood(net, meta, out, sha, 2200, 550, a.ood_percentile, a.ood_method,
                                  a.ood_head_percentile)
    if a.measure_ood:
        metrics["ood_measurement"] = measure_ood(net, meta, out, 2200)
    if "cam" in parts:
        metrics["gradcam"] = measure_cam(net, meta, 100)
    save()
    best100 = None
    if "patches" in parts or "featvis" in parts:
        metrics["patches"], best100 = make_patches(net, meta, out, a.images, index)
        save()
    if "featvis" in parts:
        def keep(done: dict[str, Any]) -> None:
            metrics["featvis"] = done
            save()

        metrics["featvis"] = make_featvis(net, meta, out, a.steps, index, best100, keep)
    if "shrink" in parts:
        shrink_featvis(out, index)
    if "verify" in parts and index["featvis"]:
        metrics["featvis_shipped"] = verify_featvis(net, meta, out, index)
    save()


if __name__ == "__main__":
    main()

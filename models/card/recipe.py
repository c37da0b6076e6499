"""The training recipe in the card's words: the Training bullets and the one-line summary of *Runs tried*."""

from __future__ import annotations

from typing import Any

from models import world
from models.card.text import pct, snippet
from models.zoo.tinyweights import taught_parts


def with_batchnorm(cfg: dict[str, Any]) -> bool:
    return bool(cfg.get("batchnorm", True))  # runs from before the switch all trained with BatchNorm


def batchnorm_line(cfg: dict[str, Any]) -> str:
    return snippet("batchnorm_line", batchnorm=with_batchnorm(cfg))


def parts_task_line(cfg: dict[str, Any]) -> list[str]:
    """The training's second task, about the parts, as one bullet when the recipe has one."""
    taught = taught_parts(cfg)
    if taught is None:
        return []
    layer = taught["layer"]
    readout = cfg.get("parts_readout", "linear")
    return [snippet(
        "parts_task_line", task=taught["task"], readout=readout, layer=layer, width=cfg["widths"][layer - 1],
        parts=world.PARTS, visible=world.VISIBLE_PIXELS, weight=cfg["parts_weight"],
        l1=cfg.get("parts_l1") if readout == "linear" else None, dropout=cfg.get("parts_dropout"),
        temperature=cfg.get("parts_final_temperature"),
        drop_parts=pct(cfg["drop_parts"], 0) if cfg.get("drop_parts") else None,
    )]


def parts_task_recipe(cfg: dict[str, Any]) -> str:
    """The parts task in a recipe's one-line summary ("" without one)."""
    taught = taught_parts(cfg)
    if taught is None:
        return ""
    said = "where each part type is" if taught["task"] == "where" else "which part types are in the picture"
    flags = f"--parts-task {taught['task']} --parts-weight {cfg['parts_weight']:g}"
    readout = cfg.get("parts_readout", "linear")
    # The L1 weighs only a linear readout's weights: on a one-unit readout it is not used.
    for key in ("parts_l1", "parts_dropout", "parts_area_power"):
        if cfg.get(key) and (key != "parts_l1" or readout == "linear"):
            flags += f" --{key.replace('_', '-')} {cfg[key]:g}"
    if readout != "linear":
        flags += f" --parts-readout {readout}"
    if readout == "one-unit":
        flags += f" --parts-final-temperature {cfg['parts_final_temperature']:g}"
    return f"; a second task, saying {said} from conv{taught['layer']} (`{flags}`)"


def shipped_recipe(meta: dict[str, Any]) -> str:
    """The shipped recipe as *Runs tried* gives each run's."""
    cfg = meta["train_config"]
    return (f"{meta['input_size']} px, conv1 {cfg['conv1_kernel']}x{cfg['conv1_kernel']} stride "
            f"{cfg['conv1_stride']}, {'BatchNorm' if with_batchnorm(cfg) else 'no BatchNorm'}, "
            f"dropout {cfg['dropout']}, lr {cfg['lr']}, {cfg['steps']:,} steps" + parts_task_recipe(cfg))


def training_context(meta: dict[str, Any], repro: dict[str, Any] | None) -> dict[str, Any]:
    """What the Training section quotes: the recipe, its cost, its snapshots and a second run of it."""
    cfg, m = meta["train_config"], meta["metrics"]
    out: dict[str, Any] = {
        "cfg": cfg, "images": f"{cfg['steps'] * cfg['batch_size']:,}", "warmup": pct(cfg["warmup_fraction"], 0),
        "batchnorm": with_batchnorm(cfg), "batchnorm_line": batchnorm_line(cfg),
        "parts_task_line": "\n".join(parts_task_line(cfg)),
        "minutes": f"{m['training_seconds'] / 60:.1f}", "seconds": f"{m['training_seconds']:.0f}",
        "images_per_second": f"{m['training_images_per_second']:.0f}",
        "generator_per_second": f"{m['generator_images_per_second']:.0f}",
        "snapshots": ", ".join(f"`{c['file']}` (step {c['step']}, {pct(c['fraction'], 0)})"
                               for c in meta["checkpoints"]),
        "repro": None,
    }
    if repro is not None:
        diff = repro["accuracy"] - m["accuracy"]
        out["repro"] = {
            "when": repro["when"], "minutes": f"{repro['training_seconds'] / 60:.1f}",
            "accuracy": pct(repro["accuracy"], 2), "images": repro["images"],
            "diff": f"{'+' if diff >= 0 else ''}{100 * diff:.2f}", "reproduced": abs(diff) <= 0.01,
            "same_sha": repro["sha256"] == meta["sha256"],
        }
    return out

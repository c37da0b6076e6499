"""The end of a run: the shipped network's dtype, its weights file and the tiny.json metadata beside it."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models import world
from models.nets import MiniAlexNet
from models.preprocess import MEAN, STD
from models.training.config import TrainConfig
from models.training.network import BNTrainNet, fold_batchnorm, predict
from models.zoo.tinyweights import META_KEYS, save_model, write_meta


def trained_on(cfg: TrainConfig) -> str:
    """What the network learnt from, in words (the page and the API show it)."""
    text = (f"{cfg.steps * cfg.batch_size:,} procedurally generated {cfg.input_size}px parts-world images "
            f"({len(world.CLASSES)} classes: objects built from shared parts, plus scrambled arrangements), "
            f"generated on the fly from world seed {cfg.world_seed}.")
    if cfg.parts_weight > 0:
        # The page must not let a teacher think the part detectors came from class labels alone.
        text += (f" Besides each picture's class, conv{cfg.parts_layer} was trained to say "
                 + ("where each part type is (its mask)" if cfg.parts_task == "where"
                    else "which part types are in the picture (never where)")
                 + {"linear": ", through a readout that was then removed.",
                    "one-unit": ", each part type by one unit the training chose (its readout was then removed).",
                    "assigned": f", each part type by one unit given to it before training (conv{cfg.parts_layer} "
                                f"units 0-{len(world.PARTS) - 1}, in the order {', '.join(world.PARTS)}; "
                                "the readout was then removed)."}[cfg.parts_readout])
    return text


def _jsonable(d: dict[str, Any]) -> dict[str, Any]:
    # out_dir is where this machine wrote the files, not part of the recipe.
    return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items() if k != "out_dir"}


def finish(cfg: TrainConfig, model: BNTrainNet, val_x: np.ndarray, val_y: np.ndarray, seconds: float,
           checkpoints: list[dict[str, Any]]) -> dict[str, Any]:
    """Save the folded network (fp16 when that changes no validation answer) and its metadata into out_dir."""
    out = Path(cfg.out_dir)
    final = fold_batchnorm(model)
    val_fp32 = predict(final, val_x)
    half = MiniAlexNet(final.config)
    half.load_state_dict({k: v.half().float() for k, v in final.state_dict().items()})
    val_fp16 = predict(half.eval(), val_x)
    # fp16 ships only if it loses nothing measurable on the validation images.
    use_fp16 = bool((val_fp16 == val_fp32).all())
    digest = save_model(final, out / f"{cfg.name}.safetensors", torch.float16 if use_fp16 else torch.float32)
    gen_rate = world.images_per_second(cfg.input_size, 200)
    meta = {
        "classes": list(world.CLASSES),
        "input_size": cfg.input_size,
        "mean": MEAN,
        "std": STD,
        "net": final.config.to_dict(),
        "dtype": "float16" if use_fp16 else "float32",
        "train_config": _jsonable(asdict(cfg)),
        "seed": cfg.seed,
        "metrics": {
            "accuracy": None,  # filled by `layerscope evaluate --write-metadata`
            "per_class_accuracy": None,
            "dissection": None,  # filled by `layerscope dissect --write-metadata`
            "validation_accuracy": float((val_fp32 == val_y).mean()),
            "fp16_agreement": float((val_fp16 == val_fp32).mean()),
            "training_seconds": round(seconds, 1),
            "training_images_per_second": round(cfg.steps * cfg.batch_size / seconds, 1),
            "generator_images_per_second": round(gen_rate, 1),
        },
        "checkpoints": checkpoints,
        "sha256": digest,
        "trained_on": trained_on(cfg),
    }
    assert tuple(meta) == META_KEYS
    write_meta(meta, out)
    return meta

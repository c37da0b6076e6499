"""Train the embedded "tiny" MiniAlexNet on the parts world: ``layerscope train`` (``python -m models.training``).

The recipe and its flags are in :mod:`~models.training.config`, the pictures and part targets
in :mod:`~models.training.data`, the parts task's readouts and losses in
:mod:`~models.training.readouts`, the network while it trains in
:mod:`~models.training.network`, the loop in :mod:`~models.training.loop`, and what a run
leaves beside its weights in :mod:`~models.training.finish` and :mod:`~models.training.plots`.
"""

from __future__ import annotations

from models.training.config import parse_args
from models.training.loop import train

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """``layerscope train``: one run with the flags' recipe, then a line saying where its weights are."""
    cfg = parse_args(argv)
    progress = bool(cfg.extra.pop("progress", True))
    meta = train(cfg, progress=progress)
    m = meta["metrics"]
    print(f"done in {m['training_seconds']} s; validation accuracy {m['validation_accuracy']:.4f}; "
          f"weights {cfg.out_dir}/{cfg.name}.safetensors ({meta['dtype']})")
    return 0

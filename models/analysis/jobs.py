"""The command line the tiny model's measuring jobs share (evaluate, dissect, reliance).

Each job measures the shipped weights (or a run's, ``--weights-dir``) on ``--images``
fresh parts-world pictures of world ``--seed``, prints a table or ``--json``, and with
``--write-metadata`` keeps its numbers beside the weights.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from models.commandline import Parser
from models.zoo.tinyweights import WEIGHTS_DIR, load_tiny


def parser(prog: str, doc: str, seed: int, images: int, write_help: str) -> argparse.ArgumentParser:
    p = Parser(prog=prog, description=doc.splitlines()[0])
    p.add_argument("--model", default="tiny", choices=["tiny"])
    p.add_argument("--weights-dir", default=str(WEIGHTS_DIR))
    p.add_argument("--seed", type=int, default=seed)
    p.add_argument("--images", type=int, default=images)
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--write-metadata", action="store_true", help=write_help)
    return p


def run(args: argparse.Namespace, job: Callable[[nn.Module, dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
    """Load the weights, run ``job(model, meta)`` on two threads; its report with ``seconds``."""
    torch.set_num_threads(2)
    model, meta = load_tiny(args.weights_dir)
    t0 = time.perf_counter()
    report = job(model, meta)
    report["seconds"] = round(time.perf_counter() - t0, 1)
    return report

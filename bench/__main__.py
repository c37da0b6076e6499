"""``python -m bench [--quick] [--reps N] [--models tiny,alexnet] [--only inprocess,peers,...]``.

Runs the groups in order, prints one table and writes bench/results/latest.{json,md}.
A full run takes about two minutes on a quiet 2-core machine; ``--quick`` about one.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

from bench import browser, fairness, gradcam, http, inprocess, naive, peers, scale, zoo
from bench.common import MODELS, Config, Row, load_average, setup_torch
from bench.report import context, text, write

GROUPS: dict[str, Callable[[Config], list[Row]]] = {
    "inprocess": inprocess.run,
    "peers": peers.run,
    "gradcam": gradcam.run,
    "http": http.run,
    "naive": naive.run,
    "fairness": fairness.run,
    "browser": browser.run,
    "zoo": zoo.run,
    "scale": scale.run,
}
RESULTS = Path(__file__).resolve().parent / "results"


def run_groups(config: Config, progress: Callable[[str], None] = lambda _: None) -> list[Row]:
    """Every requested group's rows, in the table's order."""
    setup_torch()
    rows: list[Row] = []
    for name in config.groups:
        progress(f"[bench] {name} ...")
        started = time.perf_counter()
        rows += GROUPS[name](config)
        progress(f"[bench] {name} done in {time.perf_counter() - started:.0f} s")
    return rows


def parse(argv: list[str]) -> tuple[Config, Path | None]:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions and shorter loads (~1 min)")
    parser.add_argument("--reps", type=int, help="repetitions per in-process row (default 25, quick 5)")
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated: alexnet,tiny")
    parser.add_argument("--only", default=",".join(GROUPS), help=f"comma-separated groups: {','.join(GROUPS)}")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for latest.json and latest.md")
    parser.add_argument("--no-write", action="store_true", help="print the table only")
    args = parser.parse_args(argv)
    groups = tuple(g.strip() for g in args.only.split(",") if g.strip())
    unknown = [g for g in groups if g not in GROUPS]
    if unknown:
        parser.error(f"unknown group(s): {', '.join(unknown)}")
    models = tuple(m.strip() for m in args.models.split(",") if m.strip())
    reps = args.reps or (5 if args.quick else 25)
    return Config(reps=reps, quick=args.quick, models=models, groups=groups), None if args.no_write else args.out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    config, out = parse(argv)
    started, load_before = time.perf_counter(), load_average()
    rows = run_groups(config, lambda line: print(line, file=sys.stderr, flush=True))
    info = context(config, argv, started, load_before)
    print(text(rows))
    print(f"\nload average before {info['load_before']}, after {info['load_after']}; {info['seconds']:.0f} s")
    if out is not None:
        write(rows, info, out)
        print(f"wrote {out / 'latest.json'} and {out / 'latest.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The ``layerscope`` command: serve, list models, extract activations, fetch weights, and
the model jobs (train, evaluate, dissect, reliance) that live in ``models/``.

Flags override the ``LAYERSCOPE_`` environment through the one Settings object.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from app.settings import Settings

# job -> (module, help)
JOBS = {
    "train": ("models.training", "train the tiny model"),
    "evaluate": ("models.analysis.evaluate", "the tiny model's accuracy on fresh parts-world pictures"),
    "dissect": ("models.analysis.dissect", "what every unit of the tiny model detects (Network Dissection)"),
    "reliance": ("models.analysis.reliance", "which parts the tiny model's answers need (each part left out)"),
}


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {
        key: value
        for key, value in {
            "host": getattr(args, "host", None),
            "port": getattr(args, "port", None),
            "default_model": getattr(args, "model", None),
            "alexnet_weights": getattr(args, "alexnet_weights", None),
        }.items()
        if value is not None
    }
    return Settings(**overrides)


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from app.main import create_app

    settings = _settings(args)
    # uvicorn drains in-flight requests on SIGTERM, then re-raises the signal; that is a
    # clean stop for us, so the re-raised SIGTERM ends the process with status 0.
    signal.signal(signal.SIGTERM, lambda _sig, _frame: sys.exit(0))
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level="info",
        timeout_graceful_shutdown=settings.graceful_shutdown_s,
        # uvicorn believes X-Forwarded-For from 127.0.0.1 by default; only our setting decides.
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=settings.trusted_proxies or None,
    )
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from models.zoo.registry import load_registry

    settings = _settings(args)
    rows = [("id", "available", "trained on", "accuracy")]
    for entry in load_registry(settings.model_ids, settings.alexnet_weights).values():
        accuracy = entry.accuracy_percent
        available = "yes" if entry.available else f"no: run `{entry.how_to_get}`"
        shown = "untrained" if not entry.trained else ("-" if accuracy is None else f"{accuracy:.2f}%")
        rows.append((entry.id, available, entry.trained_on, shown))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return 0


def cmd_extract(args: argparse.Namespace) -> int:
    from app.extract import extract_to

    settings = _settings(args)
    return extract_to(
        [Path(p) for p in args.images], args.model, args.layers, Path(args.out), settings
    )


def cmd_fetch(args: argparse.Namespace) -> int:
    from models.zoo.fetch import fetch_alexnet

    path = fetch_alexnet()
    print(f"AlexNet ImageNet weights ready at {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="layerscope", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the web app and API")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--model", help="the model the page opens with (default tiny)")
    serve.add_argument("--alexnet-weights", help="path to AlexNet ImageNet weights")
    serve.set_defaults(func=cmd_serve)

    models = sub.add_parser("models", help="list the models and whether they are available")
    models.add_argument("--alexnet-weights")
    models.set_defaults(func=cmd_models)

    extract = sub.add_parser("extract", help="write activations of images to .npz")
    extract.add_argument("images", nargs="+")
    extract.add_argument("--model", default="tiny")
    extract.add_argument("--layers", help="comma-separated layer names (default: conv layers)")
    extract.add_argument("--out", required=True, help="an .npz file (one image) or a directory")
    extract.add_argument("--alexnet-weights")
    extract.set_defaults(func=cmd_extract)

    fetch = sub.add_parser("fetch-weights", help="download model weights (with a progress bar)")
    fetch.add_argument("model", choices=["alexnet"])
    fetch.set_defaults(func=cmd_fetch)

    for job, (_, text) in JOBS.items():
        sub.add_parser(job, help=f"{text} (see `layerscope {job} --help`)", add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in JOBS:
        # The model jobs own their flags; hand everything after the job name over.
        job = importlib.import_module(JOBS[argv[0]][0])
        return int(job.main(argv[1:]) or 0)
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())

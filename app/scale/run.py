"""``layerscope serve --ray``: start (or join) Ray, deploy the app, and take it down on a signal.

Without an address a Ray instance of its own starts on this machine: on loopback, with
as many CPUs as the most replicas it may run (one each), no dashboard, a small object
store (the app passes pictures over HTTP, never through Ray's objects). With an address
it joins that cluster, deploys the app there and, when stopped, removes the app and
leaves the cluster running.

SIGTERM or SIGINT removes the app (each replica drains its requests in flight for up to
``graceful_shutdown_s``), then shuts down Serve and Ray if this process started them; the
process ends with status 0.
"""

from __future__ import annotations

import os
import signal
import sys
import time
import urllib.request
from collections.abc import Callable
from types import FrameType

import ray
from ray import serve
from ray.serve.exceptions import RayServeException

from app.scale.deployment import APP_NAME, REPLICA_HEADER, Scaling, application
from app.settings import Settings

OBJECT_STORE_BYTES = 128 * 1024 * 1024
# Ports past the replicas' own that direct_urls also asks, in case some were taken already.
DIRECT_SLACK = 16


class Stop(BaseException):
    """Raised in the main thread by SIGTERM or SIGINT: stop serving."""


def _stop(_signal: int, _frame: FrameType | None) -> None:
    raise Stop()


def start_ray(address: str | None, cpus: int) -> bool:
    """Join the cluster at ``address``, or start a local Ray instance; whether it was started here."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no prompt, nothing sent anywhere
    if address:
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
        return False
    ray.init(
        num_cpus=cpus,
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        object_store_memory=OBJECT_STORE_BYTES,
        log_to_driver=False,
    )
    return True


def deploy(settings: Settings, scaling: Scaling) -> None:
    serve.start(http_options={"host": settings.host, "port": settings.port})
    serve.run(application(settings, scaling), name=APP_NAME, route_prefix="/")


def take_down(started: bool) -> None:
    """Remove the app; shut down Serve and Ray too when this process started them."""
    if not ray.is_initialized():
        return
    try:
        serve.delete(APP_NAME)
    except RayServeException:
        pass  # stopped before Serve was running: nothing was deployed
    finally:
        if started:
            serve.shutdown()
            ray.shutdown()


def direct_urls(settings: Settings, replicas: int, timeout_s: float = 60.0) -> list[str]:
    """The replicas' own addresses under Serve's direct ingress: the ports from ``settings.port + 1``
    on whose /healthz answers as a LayerScope replica (X-LayerScope-Replica), up to ``replicas``.

    Serve picks each replica's port (the first free one in its range) without saying which,
    so they are found by asking; a port held by anything else does not answer as a replica.
    """
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    found: dict[int, str] = {}
    deadline = time.monotonic() + timeout_s
    while len(found) < replicas and time.monotonic() < deadline:
        for port in range(settings.port + 1, settings.port + 1 + replicas + DIRECT_SLACK):
            if port in found:
                continue
            try:
                with urllib.request.urlopen(f"http://{host}:{port}/healthz", timeout=1) as response:
                    if response.headers.get(REPLICA_HEADER.decode()):
                        found[port] = f"http://{host}:{port}"
            except (OSError, ValueError):
                continue
        if len(found) < replicas:
            time.sleep(0.25)
    return [found[port] for port in sorted(found)]


def serve_on_ray(
    settings: Settings, address: str | None, scaling: Scaling, say: Callable[[str], None] = print,
    *, direct: bool = False,
) -> int:
    """Serve until SIGTERM or SIGINT; 0 once everything this process set up is taken down.

    ``direct``: Serve's direct ingress is on (the caller set it up): say where each replica
    answers by itself, beside the proxy's address."""
    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    started = False
    try:
        started = start_ray(address, scaling.most)
        # ray.init puts its own SIGTERM handler in; ours decides how this process ends.
        for sig in previous:
            signal.signal(sig, _stop)
        deploy(settings, scaling)
        where = ray.get_runtime_context().gcs_address
        say(f"LayerScope on Ray Serve at http://{settings.host}:{settings.port} (Ray at {where})")
        if direct:
            replicas = scaling.autoscale[0] if scaling.autoscale else (scaling.replicas or 1)
            urls = direct_urls(settings, replicas)
            say(f"Replicas answering directly (Serve's direct ingress): {', '.join(urls) or 'none found yet'}")
        sys.stdout.flush()
        while True:
            time.sleep(3600)
    except Stop:
        pass
    finally:
        for sig in previous:
            signal.signal(sig, signal.SIG_IGN)  # a second signal must not cut the clean-up short
        take_down(started)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0

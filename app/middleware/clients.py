"""Who a request comes from, and whether it makes the model work: what the per-client limits share.

A client is its API key when it sends one the server knows (``X-API-Key``), else its
address. ``X-Forwarded-For`` is believed only when the connection comes from a configured
trusted proxy, and then only as far as the first hop that is not itself a trusted proxy
(read from the right, where the proxies append); otherwise anyone could claim a fresh
address per request. An unknown key counts as no key, so inventing keys buys nothing.

Model work is every POST under ``/api/`` and the reads that run a network: a model's
first-layer filters and one unit's record (its feature visualization may be computed on
demand). Pages, static files, health probes, the docs, the model list, one model's summary
and a layer's unit listing are reads that cost the model nothing.

``current_client`` carries the client of the request being served from the middleware to
the engine, whose heavy lane caps each client's long jobs.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections.abc import Iterable
from contextvars import ContextVar

from starlette.types import Scope

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
KEYED = "key:"
ANONYMOUS = "ip:"
API = "/api/"
MODELS = ("api", "v1", "models")

current_client: ContextVar[str | None] = ContextVar("layerscope_client", default=None)


def parse_networks(spec: str) -> list[Network]:
    """``"10.0.0.1, 192.168.0.0/16"`` -> networks (a bare address is a /32 or /128)."""
    return [ipaddress.ip_network(part.strip(), strict=False) for part in spec.split(",") if part.strip()]


def _in(address: str, networks: Iterable[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


def client_address(scope: Scope, trusted: list[Network]) -> str:
    """The address to limit by: the peer, or what trusted proxies say the peer was."""
    client = scope.get("client")
    peer = client[0] if client else "unknown"
    if not trusted or not _in(peer, trusted):
        return peer
    forwarded = b",".join(v for k, v in scope.get("headers", ()) if k == b"x-forwarded-for")
    hops = [h.strip() for h in forwarded.decode("latin-1").split(",") if h.strip()]
    for hop in reversed(hops):
        if not _in(hop, trusted):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return peer  # garbage where the proxy should have written an address
    return peer


class ClientIdentity:
    """Tells clients apart: ``key:<sha256 of the key>`` for a known API key, else ``ip:<address>``."""

    def __init__(self, api_keys: str = "", trusted_proxies: str = "") -> None:
        self.api_keys = [k.strip().encode() for k in api_keys.split(",") if k.strip()]
        self.trusted = parse_networks(trusted_proxies)

    def known_key(self, scope: Scope) -> bytes | None:
        for name, value in scope.get("headers", ()):
            if name == b"x-api-key":
                # Compare every key in constant time: timing must not reveal a prefix.
                matches = [hmac.compare_digest(value, key) for key in self.api_keys]
                return value if any(matches) else None
        return None

    def __call__(self, scope: Scope) -> str:
        key = self.known_key(scope)
        if key is not None:
            return KEYED + hashlib.sha256(key).hexdigest()
        return ANONYMOUS + client_address(scope, self.trusted)


def is_model_work(scope: Scope) -> bool:
    """Whether the request makes the model work (the module docstring lists which do)."""
    if scope["type"] != "http" or not scope["path"].startswith(API):
        return False
    if scope["method"] == "POST":
        return True
    if scope["method"] != "GET":
        return False
    parts = scope["path"].strip("/").split("/")
    if len(parts) < 5 or tuple(parts[:3]) != MODELS:
        return False
    # /api/v1/models/{id}/filters, /api/v1/models/{id}/units/{layer}/{channel}
    return (parts[4] == "filters" and len(parts) == 5) or (parts[4] == "units" and len(parts) >= 7)

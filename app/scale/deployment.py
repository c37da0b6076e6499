"""The Serve application: one ingress deployment whose every replica runs ``create_app``.

Each replica builds the whole app (routes, middleware, the page, the docs) from the settings
it is handed, so every replica serves exactly what ``layerscope serve`` serves; the app's own
lifespan loads the models once per replica. Inside a replica the engine works as it does
on one machine: its one inference thread, its micro-batches, its bounded admission answering
503 + Retry-After as problem JSON.

Serve bounds what reaches a replica: ``max_ongoing_requests`` per replica, set above what the
engine itself admits (pictures and long jobs) so that model work past a replica's capacity
is refused by the engine, as our own problem JSON, rather than held by Serve; and
``max_queued_requests``, what Serve holds while every replica is at that bound, past which
Serve itself answers 503 with Retry-After (its own plain-text body: Serve offers no hook for
the body of that refusal).

Every response names the replica that served it (``X-LayerScope-Replica``), so a client, a
load test or an operator can tell replicas apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ray import serve
from ray.serve import Application
from ray.serve.config import AutoscalingConfig, BackpressureConfig
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.scale.ingress import warn_if_blind
from app.settings import Settings

APP_NAME = "layerscope"
DEPLOYMENT = "LayerScope"
REPLICA_HEADER = b"x-layerscope-replica"


@dataclass(frozen=True)
class Scaling:
    """A fixed number of replicas, or autoscaling between ``autoscale`` (min, max); neither:
    whatever a Serve config file says (one replica if it says nothing)."""

    replicas: int | None = None
    autoscale: tuple[int, int] | None = None

    @property
    def most(self) -> int:
        return self.autoscale[1] if self.autoscale else (self.replicas or 1)


class ReplicaHeader:
    """Adds ``X-LayerScope-Replica: <id>`` to every HTTP response of the app it wraps."""

    def __init__(self, app: ASGIApp, replica: str) -> None:
        self.app = app
        self.replica = replica.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)  # the lifespan, which loads the models
            return

        async def named(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), (REPLICA_HEADER, self.replica)]}
            await send(message)

        await self.app(scope, receive, named)


@serve.ingress()
class LayerScope:
    """One replica. Serve builds its ASGI app after the constructor (``__serve_build_asgi_app__``),
    inside the replica's own process, so nothing of the app is pickled."""

    def __init__(self, settings: dict[str, Any]) -> None:
        self.settings = Settings(**settings)
        # On a cluster the nodes' environment picks the ingress; say so where the operator looks.
        warn_if_blind(self.settings)

    def __serve_build_asgi_app__(self) -> ASGIApp:
        from app.main import create_app

        replica = serve.get_replica_context().replica_id.unique_id
        return ReplicaHeader(create_app(self.settings), replica)


def replica_limits(settings: Settings) -> tuple[int, int]:
    """(max_ongoing_requests, max_queued_requests) for the settings' engine.

    Twice what the engine admits (pictures running and queued, long jobs running and
    waiting), so the engine refuses model work first and the page's cheap reads (the page,
    static files, the model list) still get through beside a full engine.
    """
    engine = (1 + settings.queue_size) + (settings.heavy_jobs + settings.heavy_queue)
    return 2 * engine, 2 * engine


def deployment_options(settings: Settings, scaling: Scaling) -> dict[str, Any]:
    ongoing, queued = replica_limits(settings)
    options: dict[str, Any] = {
        "name": DEPLOYMENT,
        "max_ongoing_requests": ongoing,
        "max_queued_requests": queued,
        "backpressure_config": BackpressureConfig(status_code=503, retry_after_s=settings.retry_after_s),
        # The replica drains as `layerscope serve` does on SIGTERM.
        "graceful_shutdown_timeout_s": settings.graceful_shutdown_s,
        "ray_actor_options": {"num_cpus": 1},
    }
    if scaling.replicas is not None:
        options["num_replicas"] = scaling.replicas
    if scaling.autoscale is not None:
        low, high = scaling.autoscale
        # Half the engine's admission per replica: scale up before pictures start to wait long.
        target = max(1, (1 + settings.queue_size) // 2)
        options["autoscaling_config"] = AutoscalingConfig(
            min_replicas=low, max_replicas=high, target_ongoing_requests=target
        )
    return options


def application(settings: Settings, scaling: Scaling) -> Application:
    """The LayerScope Serve application for these settings."""
    deployment = serve.deployment(**deployment_options(settings, scaling))(LayerScope)
    return deployment.bind(settings.model_dump())


def app_builder(args: dict[str, str]) -> Application:
    """For a Serve config file (``import_path: app.scale.deployment:app_builder``), as KubeRay's
    ``RayService`` uses: settings from the ``LAYERSCOPE_`` environment, ``args`` overriding them
    (field names, e.g. ``{"models": "tiny,alexnet"}``). Replica counts, autoscaling and GPUs
    come from the config file's ``deployments`` section, which overrides these options."""
    overrides: dict[str, Any] = dict(args)
    return application(Settings(**overrides), Scaling())

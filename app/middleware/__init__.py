"""Pure ASGI middlewares, one concept per module, and the one place that stacks them.

From the outside in: security headers (outside even the 500 handler, so every response
has them), Starlette's error middleware, CORS for ``/api/*``, the rate limit, the cap on
each client's requests in flight, the body cap, the slow-body cut-off, then the app.
Cheap refusals (429, 413 by Content-Length) happen before anything reads the body; a
request the in-flight cap refuses still spends a token of the rate limit.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.types import ASGIApp

from app.limits import LimitStore
from app.middleware.bodylimit import BodyLimitMiddleware
from app.middleware.cors import ApiCorsMiddleware
from app.middleware.headers import SecurityHeadersMiddleware
from app.middleware.inflight import ClientInflightMiddleware
from app.middleware.ratelimit import RateLimitMiddleware
from app.middleware.slowclient import SlowBodyMiddleware
from app.settings import Settings


def install_middleware(app: FastAPI, settings: Settings, store: LimitStore) -> None:
    # add_middleware puts each new one outside the previous: innermost first.
    app.add_middleware(SlowBodyMiddleware, min_rate=settings.min_body_rate, grace_s=settings.body_grace_s)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(
        ClientInflightMiddleware,
        store=store,
        per_client=settings.client_inflight,
        retry_after_s=settings.retry_after_s,
        api_keys=settings.api_keys,
        trusted_proxies=settings.trusted_proxies,
    )
    app.add_middleware(
        RateLimitMiddleware,
        store=store,
        anonymous_per_minute=settings.rate_limit,
        keyed_per_minute=settings.rate_limit_keyed,
        api_keys=settings.api_keys,
        trusted_proxies=settings.trusted_proxies,
    )
    app.add_middleware(ApiCorsMiddleware)
    build_stack = app.build_middleware_stack

    def build_with_headers() -> ASGIApp:
        # Starlette's ServerErrorMiddleware is always outermost in the stack it builds;
        # wrapping the built stack is the only way a 500 gets the security headers too.
        return SecurityHeadersMiddleware(build_stack())

    app.build_middleware_stack = build_with_headers  # type: ignore[method-assign]

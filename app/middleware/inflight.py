"""A cap on each client's requests in flight: 429 with Retry-After beyond it.

The engine's admission (503) bounds the whole server; this bounds one client's share of it,
so a client that opens many connections at once cannot take every slot from the others.
It counts the requests that make the model work (``app/middleware/clients.py``), from
their first byte to their answer, uploads included, and answers before reading the body.
The page itself has at most four such requests open (activations, Grad-CAM, a unit and
its guided backpropagation).

It also tells the engine whose request is being served (``current_client``), for the
heavy lane's own per-client cap. The counts live in the app's limit store (``app/limits/``):
this process's memory, or Redis shared by every replica.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from app.errors import problem_response
from app.limits import LimitStore
from app.limits.store import IN_FLIGHT
from app.middleware.clients import ClientIdentity, current_client, is_model_work

SLUG = "too-many-in-flight"


class ClientInflightMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        store: LimitStore,
        per_client: int,
        retry_after_s: int,
        api_keys: str = "",
        trusted_proxies: str = "",
    ) -> None:
        self.app = app
        self.store = store
        self.per_client = per_client  # 0 = no cap
        self.retry_after_s = retry_after_s
        self.identity = ClientIdentity(api_keys, trusted_proxies)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not is_model_work(scope):
            await self.app(scope, receive, send)
            return
        client = self.identity(scope)
        lease = await self.store.acquire(IN_FLIGHT, client, self.per_client) if self.per_client > 0 else None
        if self.per_client > 0 and lease is None:
            detail = f"This client already has {self.per_client} requests in flight; wait for one to finish."
            headers = {"Retry-After": str(self.retry_after_s)}
            await problem_response(429, detail, SLUG, headers)(scope, receive, send)
            return
        token = current_client.set(client)
        try:
            await self.app(scope, receive, send)
        finally:
            current_client.reset(token)
            if lease is not None:
                await lease.release()

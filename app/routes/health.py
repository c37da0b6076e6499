"""Liveness and readiness probes: cheap, never touching the inference thread."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from app.errors import ProblemError

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is alive")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Models are loaded and the server takes work")
def readyz(request: Request) -> dict[str, Any]:
    registry = getattr(request.app.state, "registry", None)
    if not registry:
        raise ProblemError(503, "not-ready", "Models are still loading.", {"Retry-After": "1"})
    return {"status": "ready", "models": {m: e.available for m, e in registry.items()}}

"""One error shape everywhere: RFC 9457 problem details, never a stack trace.

Every handler here answers ``application/problem+json`` with ``type``, ``title``,
``status`` and ``detail``. Unexpected exceptions become a plain 500 whose detail says
nothing about the code.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("layerscope")
PROBLEM_TYPE = "tag:layerscope,2026:problem/"


class ProblemError(Exception):
    """An error we answer on purpose, with a slug naming the kind of problem."""

    def __init__(
        self,
        status: int,
        slug: str,
        detail: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.slug = slug
        self.detail = detail
        self.headers = headers or {}


def problem_response(
    status: int, detail: str, slug: str | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = {
        "type": PROBLEM_TYPE + slug if slug else "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    return JSONResponse(body, status_code=status, headers=headers, media_type="application/problem+json")


async def _on_problem(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ProblemError)
    return problem_response(exc.status, exc.detail, exc.slug, exc.headers)


async def _on_http(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).description
    return problem_response(exc.status_code, detail, headers=dict(exc.headers or {}))


async def _on_validation(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error.get("loc", ()) if p not in ("query", "path", "body"))
        parts.append(f"{where}: {error.get('msg', 'invalid')}" if where else str(error.get("msg")))
    return problem_response(422, "; ".join(parts) or "invalid request", "invalid-parameter")


async def _on_unexpected(_request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", exc_info=exc)
    return problem_response(500, "The server hit an unexpected error.", "internal")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ProblemError, _on_problem)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(Exception, _on_unexpected)
    document_problems(app)


PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 9457 problem details.",
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "description": "A URI naming the kind of problem."},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string", "description": "What went wrong, for a person."},
    },
}


def problem_response_doc(status: int | str) -> dict[str, Any]:
    phrase = "Client error" if status == "4XX" else HTTPStatus(int(status)).phrase
    return {"description": phrase, "content": {"application/problem+json": {"schema": PROBLEM_SCHEMA}}}


def _problem_statuses(path: str, method: str, operation: dict[str, Any]) -> list[int | str]:
    """The problems an operation can answer, from what the handlers and middlewares do."""
    statuses: list[int | str] = []
    if operation.get("parameters") or "422" in operation.get("responses", {}):
        statuses.append(422)  # validation (FastAPI documents it with its own, different shape)
    if "{model_id}" in path:
        statuses += [404, 503]  # unknown or unavailable model
    if path.startswith("/api/"):
        statuses += ["4XX", 503]  # any client error is a problem document; 503 when busy
        if method == "post":
            statuses += [400, 408, 413, 415, 429]  # upload: corrupt, slow, too large, foreign, rate
    if path == "/readyz":
        statuses.append(503)
    return statuses


def document_problems(app: FastAPI) -> None:
    """Put the problem responses into the OpenAPI document, so clients (and schemathesis)
    know every error body's shape and media type; routes need not repeat them."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        for path, item in schema.get("paths", {}).items():
            for method, operation in item.items():
                responses = operation.setdefault("responses", {})
                for status in _problem_statuses(path, method, operation):
                    responses[str(status)] = problem_response_doc(status)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]

"""Interactive API docs served entirely by this app, so they work offline.

FastAPI's default ``/docs`` loads Swagger UI from a CDN and starts it with an inline
script; a classroom without internet got a blank page, and the inline script needed a
weaker Content-Security-Policy. Here Swagger UI comes from the ``swagger-ui-bundle``
package and is started by a small script file, under the same strict policy as the page.
"""

from __future__ import annotations

from pathlib import Path

import swagger_ui_bundle
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from app.routes.pages import templates

SWAGGER_DIR = Path(swagger_ui_bundle.swagger_ui_path)
SWAGGER_URL = "/vendor/swagger-ui"
router = APIRouter(include_in_schema=False)


@router.get("/docs", response_class=HTMLResponse)
def docs(request: Request) -> HTMLResponse:
    return templates.TemplateResponse(request, "docs.html", {"swagger": SWAGGER_URL})

"""HTML pages, rendered from Jinja2 templates; all assets are served by this app.

Every word on the page lives in one data file per language (static/i18n/en.json): the
template reads its interface strings from it here, the browser modules fetch the same file
for the level texts, so a translation is one new file.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from app.deps import RegistryDep, SettingsDep

ROOT = Path(__file__).resolve().parents[2]
templates = Jinja2Templates(directory=str(ROOT / "templates"))
router = APIRouter(include_in_schema=False)
LANGUAGE = "en"


@lru_cache
def texts(language: str = LANGUAGE) -> dict[str, Any]:
    return json.loads((ROOT / "static" / "i18n" / f"{language}.json").read_text(encoding="utf-8"))


@lru_cache
def samples() -> list[dict[str, str]]:
    index = ROOT / "static" / "samples" / "index.json"
    return json.loads(index.read_text(encoding="utf-8"))["samples"] if index.exists() else []


@router.get("/", response_class=HTMLResponse)
def index(request: Request, registry: RegistryDep, settings: SettingsDep) -> HTMLResponse:
    text = texts()
    return templates.TemplateResponse(
        request,
        "index.html",
        {
            "models": [e.summary() for e in registry.values()],
            "default_model": settings.default_model,
            "t": text["ui"],
            "levels": text["levels"],
            "lang": text["lang"],
            "samples": samples(),
            "live_training": settings.live_training,
        },
    )

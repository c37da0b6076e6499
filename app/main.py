"""Wiring only: settings, models, the inference engine, routers, error handlers, static files."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

import torch
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from app.errors import install_error_handlers
from app.firstuse import FirstUse
from app.inference import Engine
from app.limits import open_store
from app.middleware import install_middleware
from app.routes import api, docs, explain, health, live, pages, teach
from app.routes.pages import ROOT
from app.services.live import LiveGate
from app.settings import Settings, get_settings
from app.startup import log_summary
from app.teach import TeachStore
from models.zoo.registry import load_registry


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    limits = open_store(settings)  # the per-client counts: memory, or Redis shared by replicas

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Raises when already set in this process (e.g. a second app in the tests).
        with suppress(RuntimeError):
            torch.set_num_interop_threads(1)
        # Torchvision classifiers other than alexnet are built on first use (app/firstuse.py).
        app.state.registry = load_registry(settings.model_ids, settings.alexnet_weights, settings.config, lazy=True)
        log_summary(app.state.registry)
        app.state.engine = Engine.from_settings(settings, limits)
        # What is loaded by now (torch, the models, the app) lives as long as the server: keep
        # it out of the collector's full passes, which walked all of it (160 ms here, with the
        # GIL held: every request in flight stalled) every few hundred requests. No collection
        # first: it would cost as long again at startup, to free a few hundred objects.
        gc.freeze()
        try:
            yield
        finally:
            gc.unfreeze()
            app.state.engine.shutdown()
            await limits.aclose()

    app = FastAPI(
        title="LayerScope API",
        version="1.0.0",
        description="Per-layer activations, predictions and explanations of any image-classification CNN.",
        lifespan=lifespan,
        docs_url=None,  # served offline by app.routes.docs
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.teach = TeachStore.from_settings(settings)
    app.state.live = LiveGate()
    app.state.first_use = FirstUse()
    install_error_handlers(app)
    install_middleware(app, settings, limits)
    app.include_router(api.router)
    app.include_router(explain.router)
    app.include_router(teach.router)
    app.include_router(live.router)
    app.include_router(health.router)
    app.include_router(pages.router)
    app.include_router(docs.router)
    app.mount("/static", StaticFiles(directory=str(ROOT / "static")), name="static")
    app.mount(docs.SWAGGER_URL, StaticFiles(directory=str(docs.SWAGGER_DIR)), name="swagger-ui")
    return app


app = create_app()

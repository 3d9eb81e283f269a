"""create_app(settings): the FastAPI application. Nothing is decided at import time."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api.errors import install_error_handlers
from api.routes import ask, cards, health, search
from rag.components import Components, build_components
from rag.llm import LlamaCppGenerator
from rag.settings import Settings

log = logging.getLogger("cardrag.api")


def create_app(settings: Settings, components: Components | None = None) -> FastAPI:
    """Build the app. Components are built at start-up unless given (tests give fakes)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.components = components or build_components(settings)
        _preload(app.state.components, settings)
        yield

    app = FastAPI(
        title="cardrag",
        version="0.1.0",
        description="Citation-backed question answering over study cards.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    for module in (search, ask, cards, health):
        app.include_router(module.router)
    return app


def app_from_environment() -> FastAPI:
    """uvicorn's factory for `cardrag serve --workers N`: every worker process calls it and
    builds its app from the CARDRAG_* environment."""
    return create_app(Settings())


def _preload(components: Components, settings: Settings) -> None:
    """Load the bundled model at start-up so the first question does not pay for it."""
    if settings.llm.preload and isinstance(components.llm, LlamaCppGenerator):
        log.info("loading %s", components.llm.description)
        components.llm.load()

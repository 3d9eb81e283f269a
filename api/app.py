"""create_app(settings): the FastAPI application. Nothing is decided at import time."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api.errors import install_error_handlers
from api.routes import ask, cards, chat, decks, health, quiz, search
from api.web import ChatPage
from rag.components import Components, build_components
from rag.errors import IndexUnavailable
from rag.llm import LlamaCppGenerator
from rag.settings import Settings

log = logging.getLogger("cardrag.api")


def create_app(settings: Settings, components: Components | None = None) -> FastAPI:
    """Build the app. Components are built at start-up unless given (tests give fakes)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            app.state.components = components or build_components(settings)
        except IndexUnavailable as exc:
            # Fail fast, with the same one line the CLI prints, not a traceback.
            log.error("error: %s", exc)
            raise
        _preload(app.state.components, settings)
        yield

    app = FastAPI(
        title="cardrag",
        version="0.1.0",
        description="Citation-backed question answering over study cards.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    for module in (search, ask, cards, chat, decks, quiz, health):
        app.include_router(module.router)
    # Mounted last: the API's routes match first, everything else is the chat page's files.
    app.mount("/", ChatPage(settings.server.frame_ancestors), name="chat-page")
    return app


def _preload(components: Components, settings: Settings) -> None:
    """Load the bundled model at start-up so the first question does not pay for it."""
    if settings.llm.preload and isinstance(components.llm, LlamaCppGenerator):
        log.info("loading %s", components.llm.description)
        components.llm.load()

"""create_app(settings): the FastAPI application. Nothing is decided at import time.

Middleware, outermost first (each is installed here from settings):
  RequestContext  request id on every response, one JSON access line, unhandled error -> 500
  Prometheus      requests and latency per route, /metrics
  CORS            only the configured origins (none by default), no credentials
  ApiKey          401 unless a configured key is presented (off without keys); /healthz open
  BodyLimit       413 past security.max_body_bytes (more for chat and uploads), counted as
                  the body streams in
  RateLimit       429 with Retry-After once a caller's budget is spent
  HeadAsGet       HEAD answered as GET without the body

Errors from middleware and routes alike are in the route's shape: OpenAI's on the chat
routes, {"detail"} elsewhere (api.openai_errors). cardrag's own API routes refuse query
parameters they do not read (api.query_params); the OpenAI-compatible routes and /healthz
ignore them, as OpenAI's API does. The chat page is the router's fallback, not a mount
at "/": a mount there matched every path, so a known API path with a wrong method got the
page's 404 (or its 405 "GET, HEAD") instead of a 405 naming the route's methods.
"""

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi_offline import FastAPIOffline

from api.body_limit import BodySizeLimitMiddleware
from api.errors import install_error_handlers
from api.head import HeadAsGetMiddleware
from api.metrics import install_metrics
from api.openai_schemas import OpenAIErrorResponse
from api.query_params import exact_query
from api.ratelimit import RateLimitMiddleware, build_limiter
from api.request_context import REQUEST_ID_HEADER, RequestContextMiddleware
from api.routes import ask, cards, chat, decks, health, quiz, search
from api.schemas import CARD_IDS_JSON_BYTES, ErrorResponse, ValidationErrorResponse
from api.security import ApiKeyMiddleware, KeyRing, document_keys
from api.web import ChatPage
from rag.components import Components, build_components
from rag.errors import IndexUnavailable
from rag.llm import LlamaCppGenerator
from rag.settings import Settings

log = logging.getLogger("cardrag.api")
SHORT_KEY = 16
# Bodies are small JSON, but for the deck import, which takes files (decks.max_upload_mb,
# checked by the route with its own 413), the OpenAI chat API, whose clients resend the
# whole conversation every turn, and the routes that take a list of card ids (up to
# api.schemas.MAX_LISTED_CARDS: a quiz session's `seen`, an export), whose limit is the
# general one plus the size of the longest list their schema accepts.
DECK_IMPORT_PATH = "/v1/decks/import"
CHAT_PATH = "/v1/chat/completions"
CARD_LIST_PATHS = ("/v1/quiz/next", "/v1/export")
MULTIPART_ALLOWANCE = 64 * 1024  # form fields and boundaries around the file
COMMON_ERRORS = {
    401: {"model": ErrorResponse, "description": "Missing or invalid API key (keys are set)."},
    413: {"model": ErrorResponse, "description": "Request body too large."},
    429: {"model": ErrorResponse, "description": "Rate limit exceeded; see Retry-After."},
}
# The same errors in OpenAI's shape, as the chat routes send them (api.openai_errors).
OPENAI_COMMON_ERRORS = {status: {**error, "model": OpenAIErrorResponse}
                        for status, error in COMMON_ERRORS.items()}  # fmt: skip
# cardrag's own routes: FastAPI's 422, which api.errors extends with `message`.
INVALID_REQUEST = {422: {"model": ValidationErrorResponse, "description": "Invalid request: "
                         "`message` says what is wrong, in one line."}}  # fmt: skip


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
        app.state.deck_recovery = _start_deck_recovery(app.state.components)
        _preload(app.state.components, settings)
        yield

    # FastAPI's own /docs page loads Swagger UI from a CDN, blank on an offline machine;
    # fastapi-offline serves the same page with the files from its wheel. One docs page is
    # enough: no ReDoc.
    app = FastAPIOffline(
        title="cardrag",
        version="0.1.0",
        description="Citation-backed question answering over study cards.",
        lifespan=lifespan,
        redoc_url=None,
    )
    install_error_handlers(app)
    exact = [Depends(exact_query)]
    for module in (search, ask, cards, decks, quiz):
        app.include_router(module.router, responses={**COMMON_ERRORS, **INVALID_REQUEST},
                           dependencies=exact)  # fmt: skip
    # The OpenAI-compatible routes and the health probe ignore query parameters they do not
    # read, as OpenAI's API does: clients and monitors add their own (?api-version=, ?_=).
    app.include_router(chat.router, responses=OPENAI_COMMON_ERRORS)
    app.include_router(health.router)
    _install_middleware(app, settings)
    # What no route matches, not even by path alone (a wrong method: 405), is the page's.
    app.router.default = ChatPage(settings.server.frame_ancestors)
    return app


def app_from_environment() -> FastAPI:
    """uvicorn's factory for `cardrag serve --workers N`: every worker process calls it and
    builds its app from the CARDRAG_* environment."""
    return create_app(Settings())


def _install_middleware(app: FastAPI, settings: Settings) -> None:
    """Starlette runs the middleware added last first, so this reads from the inside out."""
    security = settings.security
    app.add_middleware(HeadAsGetMiddleware)
    app.add_middleware(RateLimitMiddleware, limiter=build_limiter(security))
    upload = settings.decks.max_upload_mb * 1024 * 1024 + MULTIPART_ALLOWANCE
    card_lists = dict.fromkeys(CARD_LIST_PATHS, security.max_body_bytes + CARD_IDS_JSON_BYTES)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=security.max_body_bytes,
                       per_path={DECK_IMPORT_PATH: upload, **card_lists,
                                 CHAT_PATH: security.max_chat_body_bytes})  # fmt: skip
    keyring = KeyRing(settings.api_keys)
    if keyring.enabled:
        app.add_middleware(ApiKeyMiddleware, keyring=keyring)
        document_keys(app)  # the Authorize button of /docs
        if any(len(key.get_secret_value()) < SHORT_KEY for key in settings.api_keys):
            log.warning("an API key is shorter than %d characters: use long random keys",
                        SHORT_KEY)  # fmt: skip
    if security.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=security.cors_origins,
            allow_credentials=False,
            allow_methods=["GET", "POST", "DELETE"],
            # Any request header: OpenAI's SDKs send their own (X-Stainless-*), and origins,
            # not headers, are what is restricted (no credentials either).
            allow_headers=["*"],
            expose_headers=[REQUEST_ID_HEADER, "Retry-After"],
            max_age=600,
        )
    install_metrics(app)
    app.add_middleware(RequestContextMiddleware)


def _start_deck_recovery(components: Components) -> threading.Thread | None:
    """See through a deck import or removal that a killed process left half done (rag.decks:
    the deck files and the index must not disagree unseen), in a thread of its own. It may
    embed a whole deck (600 cards took a minute here), and a server that did not answer its
    health checks meanwhile could be killed again in the middle of it. Until it publishes,
    the server answers from the index as it was, exactly as while an import is running, and
    another writer gets a 409. No thread at all when there is nothing to do (one stat)."""
    if not components.decks.has_pending_change():
        return None
    thread = threading.Thread(target=components.decks.recover_or_warn,
                              args=(components.indexer,), name="cardrag-deck-recovery",
                              daemon=True)  # fmt: skip
    thread.start()
    return thread


def _preload(components: Components, settings: Settings) -> None:
    """Load the bundled model and build the search indexes at start-up, so that the first
    question does not pay for them."""
    try:
        components.retriever.prepare()
    except IndexUnavailable as exc:  # searches answer 503 with the reason; still serve
        log.warning("search indexes not built at start-up: %s", exc)
    if settings.llm.preload and isinstance(components.llm, LlamaCppGenerator):
        log.info("loading %s", components.llm.description)
        components.llm.load()

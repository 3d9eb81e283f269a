"""The one mapping from domain errors to HTTP. Bodies carry a message, never a traceback."""

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from rag.errors import (
    CardError,
    CardNotFound,
    CardragError,
    DeckNotFound,
    IndexBusy,
    IndexUnavailable,
    LLMUnavailable,
    ModelNotAvailable,
)

log = logging.getLogger("cardrag.api")

STATUS_BY_ERROR: dict[type[CardragError], int] = {
    CardNotFound: 404,
    DeckNotFound: 404,
    CardError: 400,
    IndexBusy: 409,
    IndexUnavailable: 503,
    ModelNotAvailable: 503,
    LLMUnavailable: 503,
}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(CardragError)
    async def domain_error(_: Request, exc: CardragError) -> JSONResponse:
        status = next((s for t, s in STATUS_BY_ERROR.items() if isinstance(exc, t)), 400)
        return JSONResponse(status_code=status, content={"detail": str(exc)})

    @app.exception_handler(Exception)
    async def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse(status_code=500, content={"detail": "internal server error"})

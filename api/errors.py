"""The one mapping from domain errors to HTTP. Bodies carry a message, never a traceback.

Unhandled exceptions become a plain 500 in api.request_context (outermost, so the answer
still carries the request id). Messages that may name server paths (a missing model file)
are logged and replaced with a public one.
"""

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from api.request_context import REQUEST_ID_SCOPE_KEY
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
# Errors whose messages name server paths: the caller gets these words, the log the rest.
PUBLIC_MESSAGE: dict[type[CardragError], str] = {
    ModelNotAvailable: "the language model is not available on this server",
    IndexUnavailable: "the card index is unavailable on this server; its log says why",
    IndexBusy: "the card index is being updated by another ingest; try again shortly",
}


class AsciiJSONResponse(JSONResponse):
    """JSON with everything beyond ASCII escaped. A 422 echoes the offending input, and a
    lone surrogate (valid in JSON text, not encodable as UTF-8) would otherwise turn the
    422 into a 500 while it is being rendered."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, allow_nan=False,
                          separators=(",", ":")).encode("ascii")  # fmt: skip


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = jsonable_encoder(exc.errors())
        return AsciiJSONResponse(status_code=422, content={"detail": errors})

    @app.exception_handler(CardragError)
    async def domain_error(request: Request, exc: CardragError) -> JSONResponse:
        status, message = status_and_message(request, exc)
        return JSONResponse(status_code=status, content={"detail": message})


def status_and_message(request: Request, exc: CardragError) -> tuple[int, str]:
    """The HTTP status of a domain error and the message a caller may see; the full message
    is logged, with the request id, when it is not shown or the fault is the server's."""
    status = next((s for t, s in STATUS_BY_ERROR.items() if isinstance(exc, t)), 400)
    public = next((m for t, m in PUBLIC_MESSAGE.items() if isinstance(exc, t)), str(exc))
    if status >= 500 or public != str(exc):
        log.warning("%s (request_id=%s): %s", type(exc).__name__,
                    request.scope.get(REQUEST_ID_SCOPE_KEY), exc)  # fmt: skip
    return status, public

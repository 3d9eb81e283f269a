"""The one mapping from domain errors to HTTP. Bodies carry a message, never a traceback.

Unhandled exceptions become a plain 500 in api.request_context (outermost, so the answer
still carries the request id). Messages that may name server paths (a missing model file)
are logged and replaced with a public one; in the others, the server's directories (corpus,
data, models) are shown by their name only ("corpus/mlops.yaml"). The body's shape follows
the route (api.openai_errors): OpenAI's on the chat routes, {"detail"} elsewhere.
"""

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.responses import Response

from api.openai_errors import error_response
from api.request_context import REQUEST_ID_SCOPE_KEY
from api.validation import summary, with_short_input
from rag.errors import (
    CardError,
    CardNotFound,
    CardragError,
    DeckNotFound,
    IndexBusy,
    IndexUnavailable,
    LLMUnavailable,
    ModelNotAvailable,
    StorageError,
)

log = logging.getLogger("cardrag.api")


class DecksUnreadable(CardragError):
    """The server's own deck files cannot be read (a damaged imported deck, a missing corpus
    folder). rag reports that as a CardError, the error of a bad file a caller sent (a 400),
    so the deck routes read the decks first and raise this instead: the fault is the
    server's, even on a call that only reads. The caller is told which files, by their
    names only (where the server keeps them is not theirs to know); the log says why."""

    def __init__(self, message: str, files: Sequence[Path] = ()):
        super().__init__(message)
        self.files = tuple(files)

    def public_message(self) -> str:
        names = ", ".join(dict.fromkeys(path.name for path in self.files))
        damaged = f"a deck file is damaged: {names}" if names else "a deck file is damaged"
        return f"the decks on this server cannot be read ({damaged}); its log says why"


STATUS_BY_ERROR: dict[type[CardragError], int] = {
    CardNotFound: 404,
    DeckNotFound: 404,
    CardError: 400,
    IndexBusy: 409,
    DecksUnreadable: 503,
    IndexUnavailable: 503,
    StorageError: 503,
    ModelNotAvailable: 503,
    LLMUnavailable: 503,
}
# Errors whose messages name server paths: the caller gets these words, the log the rest.
PUBLIC_MESSAGE: dict[type[CardragError], str] = {
    ModelNotAvailable: "the language model is not available on this server",
    IndexUnavailable: "the card index is unavailable on this server; its log says why",
    IndexBusy: "the card index is being updated by another ingest; try again shortly",
}
# Status codes whose responses have no body (FastAPI's own HTTPException handler knows them).
_NO_BODY = {204, 205, 304}


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
        """FastAPI's `detail` list as it was (clients read it), and `message`: the same
        problems in one line for people (api.validation), which the chat page shows."""
        errors = jsonable_encoder([with_short_input(error) for error in exc.errors()])
        content = {"detail": errors, "message": summary(errors)}
        return AsciiJSONResponse(status_code=422, content=content)

    @app.exception_handler(CardragError)
    async def domain_error(request: Request, exc: CardragError) -> JSONResponse:
        status, message = status_and_message(request, exc)
        return JSONResponse(status_code=status, content={"detail": message})

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        """FastAPI's handler, but in the route's shape: a 405 on a chat route is OpenAI's."""
        if exc.status_code in _NO_BODY:
            return Response(status_code=exc.status_code, headers=exc.headers)
        return error_response(request.scope["path"], exc.status_code, str(exc.detail),
                              headers=exc.headers)  # fmt: skip


def status_and_message(request: Request, exc: CardragError) -> tuple[int, str]:
    """The HTTP status of a domain error and the message a caller may see; the full message
    is logged, with the request id, when it is not shown or the fault is the server's."""
    status = next((s for t, s in STATUS_BY_ERROR.items() if isinstance(exc, t)), 400)
    public = next((m for t, m in PUBLIC_MESSAGE.items() if isinstance(exc, t)), str(exc))
    if isinstance(exc, DecksUnreadable):
        public = exc.public_message()
    public = without_server_paths(public, server_directories(request))
    if status >= 500 or public != str(exc):
        log.warning("%s (request_id=%s): %s", type(exc).__name__,
                    request.scope.get(REQUEST_ID_SCOPE_KEY), exc)  # fmt: skip
    return status, public


def stream_failure(request: Request, exc: Exception) -> tuple[int, str]:
    """The status and public message of an error met after a stream's status line was sent,
    when an event in the stream is all that is left to tell the client; logged as above,
    and an unexpected error with its traceback."""
    if isinstance(exc, CardragError):
        return status_and_message(request, exc)
    log.error("unhandled error during a stream (request_id=%s)",
              request.scope.get(REQUEST_ID_SCOPE_KEY), exc_info=exc)  # fmt: skip
    return 500, "internal server error"


def server_directories(request: Request) -> list[Path]:
    components = getattr(request.app.state, "components", None)
    if components is None:
        return []
    settings = components.settings
    return [settings.corpus_dir, settings.data_dir, settings.models_dir]


def without_server_paths(message: str, directories: list[Path]) -> str:
    """`message` with each directory shown by its name only: where the server keeps its
    files is not the caller's business, the file's name ("corpus/mlops.yaml") is what they
    can act on. Longest first, so a directory inside another one keeps its own name."""
    spellings = {str(d): d.name for d in directories} | {
        str(d.resolve()): d.name for d in directories
    }
    for spelling in sorted(spellings, key=len, reverse=True):
        if spelling not in ("", "/", "."):
            message = message.replace(spelling, spellings[spelling])
    return message

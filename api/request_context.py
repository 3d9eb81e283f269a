"""The outermost middleware: a request id on every response and one JSON log line each.

Pure ASGI so that it wraps everything, including the responses other middleware make on
their own (401, 413, 429, CORS preflights), and so that it can turn an unhandled exception
into a plain 500 that still carries the request id (Starlette's ServerErrorMiddleware sits
outside all user middleware and would answer without it).
"""

import json
import logging
import re
import time
import uuid

from prometheus_fastapi_instrumentator.routing import get_route_name
from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.openai_errors import error_response
from api.security import CALLER_SCOPE_KEY

REQUEST_ID_HEADER = "X-Request-ID"
REQUEST_ID_SCOPE_KEY = "cardrag.request_id"
# An incoming id is echoed only if it is short and plain: it goes into logs and headers.
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
_MAX_LOGGED_PATH = 200

access_log = logging.getLogger("cardrag.access")
log = logging.getLogger("cardrag.api")


def request_id_for(headers: Headers) -> str:
    incoming = headers.get(REQUEST_ID_HEADER, "")
    return incoming if _SANE_REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex


def route_template(scope: Scope) -> str | None:
    """The route's path template ("/v1/cards/{card_id}"), as the metrics label it, also for
    requests that middleware answered before routing (a 401 still names its route)."""
    return get_route_name(HTTPConnection(scope), should_include_root_path=False)


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_for(Headers(scope=scope))
        scope[REQUEST_ID_SCOPE_KEY] = request_id
        started = time.perf_counter()
        status: int | None = None

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception("unhandled error (request_id=%s)", request_id)
            if status is not None:  # the response is under way: nothing else can be sent
                raise
            status = 500
            error = error_response(scope["path"], 500, "internal server error",
                                   headers={REQUEST_ID_HEADER: request_id})  # fmt: skip
            await error(scope, receive, send)
        finally:
            access_log.info(json.dumps(access_fields(scope, request_id, status, started)))


def access_fields(scope: Scope, request_id: str, status: int | None, started: float) -> dict:
    """What one access log line says. Never a header, a key, a body or a query string."""
    fields = {
        "event": "request",
        "request_id": request_id,
        "method": scope["method"],
        "route": route_template(scope),
        "status": status,
        "duration_ms": round((time.perf_counter() - started) * 1000, 1),
        "caller": scope.get(CALLER_SCOPE_KEY),
    }
    if fields["route"] is None:
        fields["path"] = scope["path"][:_MAX_LOGGED_PATH]
    return fields

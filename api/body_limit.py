"""The request body limit: 413, in the route's error shape (api.openai_errors), past
`max_bytes` (or another limit for a path whose schema takes more, such as the deck import).

Pure ASGI on purpose. It wraps `receive` and counts every chunk as it arrives, so a chunked
body without Content-Length is cut off as soon as it passes the limit, before the rest is
read; a declared Content-Length over the limit is refused before anything is read. A
Starlette BaseHTTPMiddleware only gets at the body through Request.body(), that is after
reading all of it into memory. Starlette's own RequestBodyLimitMiddleware counts the same
way but answers a declared oversize body in plain text, so the API would have two shapes
of 413.
"""

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.openai_errors import error_response


class BodyTooLarge(HTTPException):
    """An HTTPException, so that FastAPI, reading the body for a route, passes it on to the
    exception handlers (any other error while reading becomes a 400)."""

    def __init__(self, max_bytes: int):
        super().__init__(status_code=413, detail=f"request body larger than {max_bytes} bytes")


class BodySizeLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int, per_path: dict[str, int] | None = None):
        self.app = app
        self.max_bytes = max_bytes
        self.per_path = per_path or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.per_path.get(scope["path"], self.max_bytes)
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await self._refuse(limit, scope, receive, send)
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if started:
                raise
            await self._refuse(limit, scope, receive, send)

    async def _refuse(self, limit: int, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(scope["path"], 413, BodyTooLarge(limit).detail)
        await response(scope, receive, send)

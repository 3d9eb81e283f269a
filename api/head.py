"""HEAD wherever GET works: the GET response's status and headers, without its body, and a
405's `Allow` naming HEAD wherever it names GET.

Starlette's routes answer HEAD for GET, FastAPI's answer only the methods they declare, so a
HEAD-based health check of /healthz got a 405 (and before, the chat page's 404). Declaring
HEAD on each route would list it as a second operation of every GET in the OpenAPI
schema. Pure ASGI, innermost: the routes see a GET, everything outside sees the HEAD. For
the same reason a route's 405 lists only what the route declares ("GET"), so the `Allow`
header is completed here, where HEAD is made to work: a client that trusts `Allow`
(RFC 9110 15.5.6) would otherwise never try the HEAD it may send.
"""

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class HeadAsGetMiddleware:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        send = allowing_head(send)
        if scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def send_without_body(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, send_without_body)


def allowing_head(send: Send) -> Send:
    """`send`, with HEAD added after GET in a 405's Allow header."""

    async def send_with_head(message: Message) -> None:
        if message["type"] == "http.response.start" and message["status"] == 405:
            headers = MutableHeaders(scope=message)
            if "allow" in headers:
                headers["allow"] = with_head(headers["allow"])
        await send(message)

    return send_with_head


def with_head(allow: str) -> str:
    """'GET' -> 'GET, HEAD'; a list without GET, or with HEAD already, is left as it is."""
    methods = [method.strip() for method in allow.split(",") if method.strip()]
    if "GET" in methods and "HEAD" not in methods:
        methods.insert(methods.index("GET") + 1, "HEAD")
    return ", ".join(methods)

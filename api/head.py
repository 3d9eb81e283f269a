"""HEAD wherever GET works: the GET response's status and headers, without its body.

Starlette's routes answer HEAD for GET, FastAPI's answer only the methods they declare, so a
HEAD-based health check of /healthz got a 405 (and before, the chat page's 404). Declaring
HEAD on each route would list it as a second operation of every GET in the OpenAPI
schema. Pure ASGI, innermost: the routes see a GET, everything outside sees the HEAD.
"""

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class HeadAsGetMiddleware:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def send_without_body(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, send_without_body)

"""Rate limits with slowapi: one budget per API key, or per client address without keys.

slowapi's Limiter keeps the counters and computes the headers; the middleware that applies
it is ours, because neither of slowapi 0.1.10's middlewares works here: both look up the
endpoint by scanning `app.routes`, where FastAPI (>= 0.116) lists included routers rather
than their endpoints, so every route came out "exempt" and nothing was ever limited; and the
pure-ASGI one also re-sends the response start with every body chunk, which breaks streamed
responses. Ours calls the Limiter's own check (the call slowapi's middlewares make) for the
API's routes (/v1/...), and is pure ASGI. The chat page's files, the docs, /metrics and
/healthz cost next to nothing and are not counted: loading the page took 4-5 requests of a
caller's budget before its first question. Everything is built in create_app from settings;
slowapi's decorators would fix the limits at import time.
"""

from slowapi import Limiter
from slowapi.errors import RateLimitExceeded
from slowapi.util import get_remote_address
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.openai_errors import error_response
from api.security import CALLER_SCOPE_KEY
from rag.settings import SecuritySettings

LIMITED_PREFIX = "/v1/"


def is_limited(path: str) -> bool:
    """Whether a request draws on its caller's budget: the API's routes do."""
    return path.startswith(LIMITED_PREFIX)


def caller_key(request: Request) -> str:
    """The budget a request draws on: its API key's label, else the client's address."""
    return request.scope.get(CALLER_SCOPE_KEY) or get_remote_address(request)


def build_limiter(security: SecuritySettings) -> Limiter:
    limiter = Limiter(
        key_func=caller_key,
        application_limits=[security.rate_limit],  # one budget across routes, per caller
        headers_enabled=True,  # Retry-After and X-RateLimit-* headers
        storage_uri="memory://",
        strategy="fixed-window",
        key_style="url",  # the check runs without an endpoint; see the module docstring
    )
    # slowapi lets RATELIMIT_ENABLED in the environment override the constructor; the
    # setting decides here, as for everything else.
    limiter.enabled = security.rate_limit_enabled
    return limiter


class RateLimitMiddleware:
    def __init__(self, app: ASGIApp, limiter: Limiter):
        self.app = app
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_limited(scope["path"]) or not self.limiter.enabled:
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        try:
            self.limiter._check_request_limit(request, None, in_middleware=True)
        except RateLimitExceeded as exc:
            # Shown as is by the chat page: words for a person, the seconds are in Retry-After.
            message = f"rate limit reached ({exc.detail}); try again in a moment"
            response = error_response(scope["path"], 429, message, code="rate_limit_exceeded")
            self.limiter._inject_asgi_headers(response.headers, request.state.view_rate_limit)
            await response(scope, receive, send)
            return

        async def send_with_budget(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                self.limiter._inject_asgi_headers(headers, request.state.view_rate_limit)
                del headers["Retry-After"]  # slowapi sets it on every response; only 429 needs it
            await send(message)

        await self.app(scope, receive, send_with_budget)

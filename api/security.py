"""API keys: who may call the API. Off when no keys are configured (local use).

Keys are kept only as SHA-256 digests and a presented key is compared with every digest by
hmac.compare_digest, so neither the comparison's time nor an early exit tells how much of a
key was right. A missing key and a wrong key get the very same 401. Downstream (rate limits,
logs) a caller is named by a label ("key-2"), never by the key.
"""

import hashlib
import hmac
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI
from pydantic import SecretStr
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from api.openai_errors import error_response

# The scope key under which the authenticated caller's label travels to rate limits and logs.
CALLER_SCOPE_KEY = "cardrag.caller"
OPEN_PATHS = frozenset({"/healthz"})
UNAUTHORIZED = "missing or invalid API key: send 'Authorization: Bearer <key>' or 'X-API-Key'"
# The two ways presented_keys reads a key, as OpenAPI security schemes: Swagger UI's
# Authorize button sends either one (a key in one of them is enough).
SECURITY_SCHEMES = {
    "bearerKey": {"type": "http", "scheme": "bearer",
                  "description": "An API key (CARDRAG_API_KEYS) as `Authorization: Bearer "
                  "<key>`, as OpenAI SDK clients send theirs."},
    "headerKey": {"type": "apiKey", "in": "header", "name": "X-API-Key",
                  "description": "The same key in the `X-API-Key` header."},
}  # fmt: skip
_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()


class KeyRing:
    """The configured keys, as digests, each with a label that is safe to log."""

    def __init__(self, keys: Sequence[SecretStr]):
        self._digests = [
            (f"key-{n}", _digest(key.get_secret_value())) for n, key in enumerate(keys, 1)
        ]

    @property
    def enabled(self) -> bool:
        return bool(self._digests)

    def identify(self, presented: str) -> str | None:
        """The label of the key `presented` is, or None. Compares with every key."""
        candidate = _digest(presented)
        found = None
        for label, digest in self._digests:
            if hmac.compare_digest(candidate, digest) and found is None:
                found = label
        return found


def presented_keys(headers: Headers) -> list[str]:
    """What the caller offers: the bearer token and the X-API-Key header, if present."""
    offered = []
    scheme, _, token = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        offered.append(token.strip())
    if api_key := headers.get("x-api-key", "").strip():
        offered.append(api_key)
    return offered


class ApiKeyMiddleware:
    """Pure ASGI: rejects a request before its body is read, with one 401 for all failures."""

    def __init__(self, app: ASGIApp, keyring: KeyRing):
        self.app = app
        self.keyring = keyring

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        labels = [self.keyring.identify(key) for key in presented_keys(Headers(scope=scope))]
        caller = next((label for label in labels if label), None)
        if caller is None:
            response = error_response(
                scope["path"], 401, UNAUTHORIZED, code="invalid_api_key",
                headers={"WWW-Authenticate": 'Bearer realm="cardrag"'},
            )  # fmt: skip
            await response(scope, receive, send)
            return
        scope[CALLER_SCOPE_KEY] = caller
        await self.app(scope, receive, send)


def document_keys(app: FastAPI) -> None:
    """Declare the keys in the app's OpenAPI schema, so that /docs has an Authorize button
    and generated clients know to send one. Only for an app that requires keys (create_app
    calls this only then): the schema describes this server, and one that checks no key
    would otherwise tell clients and schema-driven tools that a key is needed."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = with_key_schemes(build())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def with_key_schemes(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` with SECURITY_SCHEMES declared, and required (either one) by every
    operation but those of OPEN_PATHS, as ApiKeyMiddleware requires them."""
    components = schema.setdefault("components", {})
    components.setdefault("securitySchemes", {}).update(SECURITY_SCHEMES)
    for path, item in schema.get("paths", {}).items():
        if path in OPEN_PATHS:
            continue
        for method, operation in item.items():
            if method in _METHODS:
                operation["security"] = [{name: []} for name in SECURITY_SCHEMES]
    return schema

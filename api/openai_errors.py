"""OpenAI's error shape, {"error": {"message", "type", "param", "code"}}, for the chat routes.

One place decides the shape of an error by its path, so that an OpenAI client can read every
error it gets from /v1/chat/completions and /v1/models: those the routes raise and those
middleware answers before routing (401, 413, 429, a 500) alike. Every other path keeps the
API's own {"detail": message}.
"""

from collections.abc import Mapping

from starlette.responses import JSONResponse

OPENAI_PATHS = ("/v1/chat/completions", "/v1/models")


def speaks_openai(path: str) -> bool:
    """Whether `path` is one of the OpenAI-compatible routes (/v1/models/{model} included)."""
    return any(path == base or path.startswith(base + "/") for base in OPENAI_PATHS)


class OpenAIError(Exception):
    """An error to report in OpenAI's shape."""

    def __init__(self, status: int, message: str, *, param: str | None = None,
                 code: str | None = None, type: str = "invalid_request_error"):  # fmt: skip
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.type = (
            status, message, param, code, type
        )  # fmt: skip

    def body(self) -> dict[str, dict[str, str | None]]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param,
                          "code": self.code}}  # fmt: skip

    def response(self, headers: Mapping[str, str] | None = None) -> JSONResponse:
        return JSONResponse(status_code=self.status, content=self.body(), headers=headers)


def error_type(status: int) -> str:
    return "server_error" if status >= 500 else "invalid_request_error"


def error_response(
    path: str,
    status: int,
    message: str,
    headers: Mapping[str, str] | None = None,
    code: str | None = None,
) -> JSONResponse:
    """The error in the shape the route at `path` speaks."""
    if speaks_openai(path):
        return OpenAIError(status, message, code=code, type=error_type(status)).response(headers)
    return JSONResponse({"detail": message}, status_code=status, headers=headers)

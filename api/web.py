"""The chat page: static files (no build step) served at / by the same app.

Its responses carry a Content-Security-Policy: the page loads and calls only its own origin,
and `frame-ancestors` (settings.server.frame_ancestors) says which sites may embed it in an
<iframe>. The policy is set here rather than app-wide because only the page is framed.
"""

from pathlib import Path

from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

WEB_DIR = Path(__file__).parent / "web"


def page_policy(frame_ancestors: list[str]) -> str:
    return (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        f"connect-src 'self'; base-uri 'none'; form-action 'self'; "
        f"frame-ancestors {' '.join(frame_ancestors)}"
    )


class ChatPage(StaticFiles):
    """index.html, app.js and style.css, each with the page's security headers."""

    def __init__(self, frame_ancestors: list[str]):
        super().__init__(directory=WEB_DIR, html=True)
        self.policy = page_policy(frame_ancestors)

    async def get_response(self, path: str, scope: Scope) -> Response:
        # The page is the app's fallback (api.app): a POST to a path that is neither an API
        # route nor a page file (an OpenAI client given a base URL without /v1) is a 404,
        # not StaticFiles' 405 "GET, HEAD", which would blame the method.
        if scope["method"] not in ("GET", "HEAD") and self.lookup_path(path)[1] is None:
            raise HTTPException(status_code=404)
        response = await super().get_response(path, scope)
        response.headers["Content-Security-Policy"] = self.policy
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

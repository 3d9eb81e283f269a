"""Tiny local servers speaking OpenAI's chat API, well and badly, for backend and fault tests.

Each runs on 127.0.0.1 in a daemon thread (ThreadingHTTPServer, so a hanging handler does
not block shutdown: it waits on `release`, which `running` sets on the way out).
"""

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

REPLY = "Backpropagation applies the chain rule [1]."
STUB_USAGE = {"prompt_tokens": 42, "completion_tokens": 7, "total_tokens": 49}


class StubHandler(BaseHTTPRequestHandler):
    """Answers like a well-behaved server; subclasses misbehave. Records every request."""

    requests: list[dict] = []
    release = threading.Event()

    def do_POST(self):  # noqa: N802 (http.server's naming)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append({"path": self.path, "body": body,
                                    "auth": self.headers.get("Authorization")})  # fmt: skip
        self.answer(body)

    def answer(self, body: dict) -> None:
        if body.get("stream"):
            wants_usage = (body.get("stream_options") or {}).get("include_usage")
            self.stream_reply(("Backpropagation ", "applies ", "the chain rule [1]."),
                              STUB_USAGE if wants_usage else None)  # fmt: skip
            return
        payload = {
            "id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": REPLY}}],
        }  # fmt: skip
        self.send_body(200, json.dumps(payload).encode())

    def send_body(self, status: int, data: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def stream_reply(self, pieces, usage: dict | None = None) -> None:
        """The pieces as chunks; with `usage`, a last chunk carrying it and no choices, as
        OpenAI sends it for stream_options.include_usage."""
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        chunks = [{"choices": [{"index": 0, "delta": {"content": piece}}]} for piece in pieces]
        if usage is not None:
            chunks.append({"choices": [], "usage": usage})
        for chunk in chunks:
            chunk = {"id": "x", "object": "chat.completion.chunk", "created": 0, "model": "m",
                     **chunk}  # fmt: skip
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.flush()
        self.wfile.write(b"data: [DONE]\n\n")

    def log_message(self, *args):
        pass


class HangingHandler(StubHandler):
    """Accepts the request and says nothing until the test is over."""

    def answer(self, body: dict) -> None:
        type(self).release.wait(timeout=30)


class SlowStreamHandler(StubHandler):
    """Streams one piece, then stalls: a generation stuck half-way."""

    def answer(self, body: dict) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        chunk = {"id": "x", "object": "chat.completion.chunk", "created": 0, "model": "m",
                 "choices": [{"index": 0, "delta": {"content": "Back"}}]}  # fmt: skip
        self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
        self.wfile.flush()
        type(self).release.wait(timeout=30)


class MalformedJSONHandler(StubHandler):
    def answer(self, body: dict) -> None:
        self.send_body(200, b'{"choices": [{"message": {"content": "Back')


class NoChoicesHandler(StubHandler):
    """Valid JSON that is not a chat completion."""

    def answer(self, body: dict) -> None:
        self.send_body(200, json.dumps({"id": "x", "object": "error"}).encode())


class ServerErrorHandler(StubHandler):
    def answer(self, body: dict) -> None:
        self.send_body(500, json.dumps({"error": {"message": "overloaded"}}).encode())


class BadRequestHandler(StubHandler):
    def answer(self, body: dict) -> None:
        self.send_body(400, json.dumps({"error": {"message": "bad model"}}).encode())


@contextmanager
def running(handler: type[StubHandler]) -> Iterator[str]:
    """Serve `handler` on a free port; yields the base URL (…/v1)."""
    handler.requests = []
    handler.release = threading.Event()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    finally:
        handler.release.set()
        httpd.shutdown()
        httpd.server_close()


def refused_url() -> str:
    """A base URL on which nothing listens: the port was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"

"""The OpenAI-compatible backend against a tiny local server speaking the chat API."""

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from rag.components import build_llm
from rag.errors import LLMUnavailable
from tests.conftest import make_settings

REPLY = "Backpropagation applies the chain rule [1]."


class ChatHandler(BaseHTTPRequestHandler):
    requests: list[dict] = []

    def do_POST(self):  # noqa: N802 (http.server's naming)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        ChatHandler.requests.append({"path": self.path, "body": body,
                                     "auth": self.headers.get("Authorization")})  # fmt: skip
        if body.get("stream"):
            self._stream()
            return
        payload = {
            "id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": REPLY}}],
        }  # fmt: skip
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _stream(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        for piece in ("Backpropagation ", "applies ", "the chain rule [1]."):
            chunk = {"id": "x", "object": "chat.completion.chunk", "created": 0, "model": "m",
                     "choices": [{"index": 0, "delta": {"content": piece}}]}  # fmt: skip
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
        self.wfile.write(b"data: [DONE]\n\n")

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = HTTPServer(("127.0.0.1", 0), ChatHandler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    ChatHandler.requests.clear()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()


def openai_llm(tmp_path, base_url):
    settings = make_settings(tmp_path, llm={
        "backend": "openai", "base_url": base_url, "model": "served-model",
        "api_key": "sk-test", "timeout": 5, "temperature": 0.2,
    })  # fmt: skip
    return build_llm(settings)


def test_generate_sends_model_temperature_and_key(tmp_path, server):
    llm = openai_llm(tmp_path, server)
    messages = [{"role": "user", "content": "What is backpropagation?"}]
    assert llm.generate(messages, max_tokens=64, temperature=0.2) == REPLY
    sent = ChatHandler.requests[0]
    assert sent["path"] == "/v1/chat/completions"
    assert sent["body"]["model"] == "served-model"
    assert sent["body"]["temperature"] == 0.2 and sent["body"]["max_tokens"] == 64
    assert sent["auth"] == "Bearer sk-test"


def test_stream_yields_pieces(tmp_path, server):
    llm = openai_llm(tmp_path, server)
    pieces = list(llm.stream([{"role": "user", "content": "q"}], max_tokens=64, temperature=0.1))
    assert "".join(pieces) == REPLY and len(pieces) == 3


def test_unreachable_server_is_an_llm_failure(tmp_path):
    llm = openai_llm(tmp_path, "http://127.0.0.1:9/v1")
    with pytest.raises(LLMUnavailable):
        llm.generate([{"role": "user", "content": "q"}], max_tokens=16, temperature=0.1)


def test_openai_backend_needs_a_base_url(tmp_path):
    from rag.errors import ModelNotAvailable

    with pytest.raises(ModelNotAvailable, match="BASE_URL"):
        build_llm(make_settings(tmp_path, llm={"backend": "openai"}))

"""A client that goes away stops its answer's generation: on 2 cores the model is one
shared resource, and an abandoned answer that ran to its end made the next question wait
for it (measured with the 1.5B model: 22-26 s instead of about 5 s)."""

import json
import threading
import time

import httpx
import pytest

from rag.testing import FakeLLM

PIECES = 1000  # at PIECE_SECONDS each: 50 s if nothing stops it


class SlowLLM(FakeLLM):
    """A grounded reply, one word every PIECE_SECONDS; records how far a stream got."""

    PIECE_SECONDS = 0.05

    def __init__(self):
        super().__init__()
        self.written = 0
        self.closed = threading.Event()

    def stream(self, messages, **kwargs):
        reply = "".join(super().stream(messages, **kwargs))
        try:
            for _ in range(PIECES):
                time.sleep(self.PIECE_SECONDS)
                self.written += 1
                yield reply.split()[0] + " "
        finally:
            self.closed.set()


@pytest.fixture
def fake_llm():
    return SlowLLM()


def _first_token_then_leave(url: str, body: dict) -> None:
    with httpx.Client(timeout=30) as http, http.stream("POST", url, json=body) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("data:") and json.loads(line[5:]).get("text"):
                return  # leaving the block closes the connection


def test_leaving_an_ask_stream_stops_the_generation(live_server, fake_llm):
    body = {"question": "What is backpropagation?", "stream": True}
    _first_token_then_leave(f"{live_server}/v1/ask", body)
    assert fake_llm.closed.wait(15), f"still generating: {fake_llm.written} of {PIECES} pieces"
    assert fake_llm.written < PIECES / 2

"""The API with a faulty OpenAI-compatible LLM behind it: refused connections, a server
hanging past CARDRAG_LLM__TIMEOUT, malformed replies. The service keeps answering: a 200
with "degraded": true and the retrieved cards, never a 5xx."""

import pytest

from rag.components import build_llm
from tests.conftest import make_settings
from tests.llm_stub import (
    HangingHandler,
    MalformedJSONHandler,
    NoChoicesHandler,
    refused_url,
    running,
)

QUESTION = {"question": "What is backpropagation?"}


def use_openai_backend(tmp_path, components, base_url):
    llm = build_llm(make_settings(tmp_path, llm={
        "backend": "openai", "base_url": base_url, "model": "m", "timeout": 0.5,
    }))  # fmt: skip
    components.llm = components.answerer.llm = llm


def assert_degraded_answer(response):
    """An LLM fault is the service's to absorb: the cards stand in for the answer."""
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["degraded"] is True and body["notice"]
    assert body["cards"] and body["citations"]
    assert "Traceback" not in response.text and "127.0.0.1" not in response.text
    assert "x-request-id" in response.headers


def test_refused_connection(tmp_path, client, components):
    use_openai_backend(tmp_path, components, refused_url())
    assert_degraded_answer(client.post("/v1/ask", json=QUESTION))
    assert client.get("/v1/search", params={"q": "backpropagation"}).status_code == 200


@pytest.mark.parametrize("handler", [HangingHandler, MalformedJSONHandler, NoChoicesHandler])
def test_misbehaving_server(tmp_path, client, components, handler):
    with running(handler) as base_url:
        use_openai_backend(tmp_path, components, base_url)
        assert_degraded_answer(client.post("/v1/ask", json=QUESTION))
        assert handler.requests, "the backend was actually called"
        assert client.get("/healthz").status_code == 200

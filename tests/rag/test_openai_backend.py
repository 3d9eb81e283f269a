"""The OpenAI-compatible backend against tiny local servers speaking the chat API, well and
badly: refused connections, a server that hangs past the timeout, malformed replies, 5xx."""

import time

import pytest

from rag.components import build_llm
from rag.deadline import Deadline, generate_within
from rag.errors import LLMUnavailable, ModelNotAvailable
from rag.llm import TokenUsage
from tests.conftest import make_settings
from tests.llm_stub import (
    REPLY,
    STUB_USAGE,
    BadRequestHandler,
    HangingHandler,
    MalformedJSONHandler,
    NoChoicesHandler,
    ServerErrorHandler,
    SlowStreamHandler,
    StubHandler,
    refused_url,
    running,
)

MESSAGES = [{"role": "user", "content": "What is backpropagation?"}]
# Small, so that the hanging-server tests are short; they assert that the call returns.
SHORT_TIMEOUT = 0.5


def openai_llm(tmp_path, base_url, **llm):
    settings = make_settings(tmp_path, llm={
        "backend": "openai", "base_url": base_url, "model": "served-model",
        "api_key": "sk-test", "timeout": 5, "temperature": 0.2, **llm,
    })  # fmt: skip
    return build_llm(settings)


@pytest.fixture
def server():
    with running(StubHandler) as base_url:
        yield base_url


def test_generate_sends_model_temperature_and_key(tmp_path, server):
    llm = openai_llm(tmp_path, server)
    assert llm.generate(MESSAGES, max_tokens=64, temperature=0.2) == REPLY
    sent = StubHandler.requests[0]
    assert sent["path"] == "/v1/chat/completions"
    assert sent["body"]["model"] == "served-model"
    assert sent["body"]["temperature"] == 0.2 and sent["body"]["max_tokens"] == 64
    assert sent["auth"] == "Bearer sk-test"


def test_stream_yields_pieces(tmp_path, server):
    llm = openai_llm(tmp_path, server)
    pieces = list(llm.stream(MESSAGES, max_tokens=64, temperature=0.1))
    assert "".join(pieces) == REPLY and len(pieces) == 3
    assert StubHandler.requests[0]["body"]["max_tokens"] == 64


def test_a_stream_asks_for_usage_and_adds_the_servers_counts(tmp_path, server):
    usage = TokenUsage()
    pieces = generate_within(openai_llm(tmp_path, server), MESSAGES, Deadline(5),
                             max_tokens=64, temperature=0.1, usage=usage)  # fmt: skip
    assert "".join(pieces) == REPLY
    assert StubHandler.requests[0]["body"]["stream_options"] == {"include_usage": True}
    assert usage.known and usage.prompt_tokens == STUB_USAGE["prompt_tokens"]
    assert usage.completion_tokens == STUB_USAGE["completion_tokens"]


class NoUsageHandler(StubHandler):
    """A server that ignores stream_options: its stream carries no counts."""

    def answer(self, body: dict) -> None:
        self.stream_reply(("Backpropagation ", "applies ", "the chain rule [1]."))


def test_a_server_that_sends_no_counts_leaves_the_usage_unknown(tmp_path):
    usage = TokenUsage()
    with running(NoUsageHandler) as base_url:
        pieces = generate_within(openai_llm(tmp_path, base_url), MESSAGES, Deadline(5),
                                 max_tokens=64, temperature=0.1, usage=usage)  # fmt: skip
        assert "".join(pieces) == REPLY
    assert not usage.known and usage.total_tokens == 0


def test_refused_connection_is_an_llm_failure_after_one_retry(tmp_path):
    llm = openai_llm(tmp_path, refused_url())
    with pytest.raises(LLMUnavailable, match="APIConnectionError"):
        llm.generate(MESSAGES, max_tokens=16, temperature=0.1)


def test_a_server_hanging_past_the_timeout_is_abandoned(tmp_path):
    with running(HangingHandler) as base_url:
        llm = openai_llm(tmp_path, base_url, timeout=SHORT_TIMEOUT)
        with pytest.raises(LLMUnavailable, match="timed out|did not answer"):
            llm.generate(MESSAGES, max_tokens=16, temperature=0.1)
        # The first attempt used the whole budget: at most one more was started.
        assert 1 <= len(HangingHandler.requests) <= 2


def test_a_stream_stalled_past_the_timeout_is_abandoned(tmp_path):
    with running(SlowStreamHandler) as base_url:
        llm = openai_llm(tmp_path, base_url, timeout=SHORT_TIMEOUT)
        pieces = []
        with pytest.raises(LLMUnavailable):
            for piece in llm.stream(MESSAGES, max_tokens=16, temperature=0.1):
                pieces.append(piece)
        assert pieces == ["Back"]


def test_a_stream_ends_at_the_callers_deadline_before_the_backend_timeout(tmp_path):
    """The backend allows 60 s; the caller (rag.deadline) stops listening in 0.5 s."""
    with running(SlowStreamHandler) as base_url:
        llm = openai_llm(tmp_path, base_url, timeout=60)
        pieces = []
        with pytest.raises(LLMUnavailable):
            until = time.monotonic() + SHORT_TIMEOUT
            for piece in llm.stream(MESSAGES, max_tokens=16, temperature=0.1, until=until):
                pieces.append(piece)
        assert pieces == ["Back"]


@pytest.mark.parametrize("handler", [MalformedJSONHandler, NoChoicesHandler])
def test_malformed_replies_are_llm_failures(tmp_path, handler):
    with running(handler) as base_url:
        llm = openai_llm(tmp_path, base_url)
        with pytest.raises(LLMUnavailable):
            llm.generate(MESSAGES, max_tokens=16, temperature=0.1)
        assert len(handler.requests) == 1  # a malformed reply is not retried


def test_a_server_error_is_retried_once(tmp_path):
    with running(ServerErrorHandler) as base_url:
        llm = openai_llm(tmp_path, base_url)
        with pytest.raises(LLMUnavailable, match="HTTP 500"):
            llm.generate(MESSAGES, max_tokens=16, temperature=0.1)
        assert len(ServerErrorHandler.requests) == 2


def test_retries_can_be_turned_off_and_client_errors_are_not_retried(tmp_path):
    with running(ServerErrorHandler) as base_url:
        llm = openai_llm(tmp_path, base_url, max_retries=0)
        with pytest.raises(LLMUnavailable):
            llm.generate(MESSAGES, max_tokens=16, temperature=0.1)
        assert len(ServerErrorHandler.requests) == 1
    with running(BadRequestHandler) as base_url:
        with pytest.raises(LLMUnavailable, match="HTTP 400"):
            openai_llm(tmp_path, base_url).generate(MESSAGES, max_tokens=16, temperature=0.1)
        assert len(BadRequestHandler.requests) == 1


def test_failure_messages_name_no_url(tmp_path):
    base_url = refused_url()
    with pytest.raises(LLMUnavailable) as failure:
        openai_llm(tmp_path, base_url).generate(MESSAGES, max_tokens=16, temperature=0.1)
    assert "127.0.0.1" not in str(failure.value)


def test_openai_backend_needs_a_base_url(tmp_path):
    with pytest.raises(ModelNotAvailable, match="BASE_URL"):
        build_llm(make_settings(tmp_path, llm={"backend": "openai"}))

"""Input limits (clear 422s), the request body limit (413) and rate limits (429)."""

import json

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from api.app import create_app
from rag.settings import Settings
from tests.api.conftest import KEY, OTHER_KEY
from tests.conftest import make_settings

LIMIT = 16 * 1024
ASK = {"question": "What is dropout?"}


@pytest.mark.parametrize("question", [
    "", "   ", "\t\n ", "x" * 1001, "what is\x00 dropout", "what is \x1b[31mdropout",
    "what is\ndropout?", "drop\x85out", "del\x7f",
])  # fmt: skip
def test_bad_questions_get_a_422_with_a_message(client, question):
    response = client.post("/v1/ask", json={"question": question})
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["body", "question"]
    assert response.json()["detail"][0]["msg"]


def test_a_lone_surrogate_is_a_422_not_a_crash(client):
    body = b'{"question": "what is \\ud800 dropout"}'
    response = client.post("/v1/ask", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422


def test_questions_at_the_limits_are_accepted(client):
    assert client.post("/v1/ask", json={"question": "  dropout?  "}).status_code == 200
    padded = "  " + "dropout " * 124 + "x" * 8  # 1,000 characters once stripped
    assert client.post("/v1/ask", json={"question": padded}).status_code == 200


@pytest.mark.parametrize("q", ["   ", "drop\x00out", "a\x1bb", "x" * 1001])
def test_bad_search_queries_get_a_422(client, q):
    assert client.get("/v1/search", params={"q": q}).status_code == 422


@pytest.mark.parametrize("params", [
    {"q": "dropout", "kk": 3},  # unknown parameter (a typo)
    {"q": "dropout", "k": 0},
    {"q": "dropout", "topic": "Not A Slug!"},
    {"q": "dropout", "deck": ""},
])  # fmt: skip
def test_bad_search_parameters_get_a_422(client, params):
    response = client.get("/v1/search", params=params)
    assert response.status_code == 422, response.text


@pytest.mark.parametrize("body", [
    {**ASK, "k": 21}, {**ASK, "k": 0}, {**ASK, "extra": True}, {**ASK, "topic": ["../etc"]},
    {**ASK, "topic": ["a"] * 21}, {**ASK, "difficulty": ["easy", "medium", "hard", "easy"]},
])  # fmt: skip
def test_bad_ask_fields_get_a_422(client, body):
    assert client.post("/v1/ask", json=body).status_code == 422


def test_a_malformed_card_id_is_a_422(client):
    assert client.get("/v1/cards/Not%20a%20slug").status_code == 422
    assert client.get("/v1/cards/no-such-card").status_code == 404


def padded_body(size: int) -> bytes:
    """A valid /v1/ask body of exactly `size` bytes (JSON allows trailing whitespace)."""
    body = json.dumps(ASK).encode()
    return body + b" " * (size - len(body))


def test_a_body_at_the_limit_is_accepted(client):
    response = client.post("/v1/ask", content=padded_body(LIMIT),
                           headers={"content-type": "application/json"})  # fmt: skip
    assert response.status_code == 200


def test_a_body_over_the_limit_is_a_413(client):
    response = client.post("/v1/ask", content=padded_body(LIMIT + 1),
                           headers={"content-type": "application/json"})  # fmt: skip
    assert response.status_code == 413
    assert response.json()["detail"]
    assert "x-request-id" in response.headers


def test_a_chunked_body_without_content_length_is_counted_as_it_streams(client):
    def chunks():
        yield padded_body(1024)
        for _ in range(LIMIT // 1024):
            yield b" " * 1024

    response = client.post("/v1/ask", content=chunks(),
                           headers={"content-type": "application/json"})  # fmt: skip
    assert response.request.headers.get("transfer-encoding") == "chunked"
    assert "content-length" not in response.request.headers
    assert response.status_code == 413


def test_the_body_limit_is_configurable(client_with):
    client = client_with(security={"max_body_bytes": 2048})
    response = client.post("/v1/ask", content=padded_body(3000),
                           headers={"content-type": "application/json"})  # fmt: skip
    assert response.status_code == 413


def test_a_caller_over_its_budget_gets_a_429_with_retry_after(client_with):
    client = client_with(security={"rate_limit": "3/minute"})
    statuses = [client.get("/v1/cards/dropout").status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    limited = client.post("/v1/ask", json=ASK)  # one budget across routes
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) > 0
    assert "rate limit" in limited.json()["detail"]
    assert "x-request-id" in limited.headers
    assert all(client.get("/healthz").status_code == 200 for _ in range(5))


def test_budgets_are_per_key(client_with):
    client = client_with(api_keys=f"{KEY},{OTHER_KEY}", security={"rate_limit": "2/minute"})
    first, second = {"X-API-Key": KEY}, {"Authorization": f"Bearer {OTHER_KEY}"}
    assert [client.get("/v1/cards/dropout", headers=first).status_code
            for _ in range(3)] == [200, 200, 429]  # fmt: skip
    assert client.get("/v1/cards/dropout", headers=second).status_code == 200


def test_without_keys_budgets_are_per_client_address(tmp_path, components):
    app = create_app(make_settings(tmp_path, security={"rate_limit": "2/minute"}), components)
    with TestClient(app, client=("10.0.0.1", 1000)) as one, \
            TestClient(app, client=("10.0.0.2", 1000)) as other:  # fmt: skip
        assert [one.get("/v1/cards/dropout").status_code for _ in range(3)] == [200, 200, 429]
        assert other.get("/v1/cards/dropout").status_code == 200


def test_rate_limits_can_be_turned_off(client_with):
    client = client_with(security={"rate_limit": "1/minute", "rate_limit_enabled": False})
    assert {client.get("/v1/cards/dropout").status_code for _ in range(4)} == {200}


def test_a_malformed_rate_limit_is_a_configuration_error():
    with pytest.raises(ValidationError, match="rate limit"):
        Settings(security={"rate_limit": "plenty"})


def test_the_deck_import_takes_uploads_beyond_the_json_limit(client_with):
    client = client_with(decks={"max_upload_mb": 1})
    rows = "".join(f"What is item {n}?,Item {n} is a thing to know.,misc,easy\n"
                   for n in range(1000))  # fmt: skip
    csv = ("question,answer,topic,difficulty\n" + rows).encode()
    assert LIMIT < len(csv) < 1024 * 1024
    imported = client.post("/v1/decks/import", data={"deck": "big"},
                           files={"file": ("big.csv", csv)})  # fmt: skip
    assert imported.status_code == 200, imported.text
    too_big = client.post("/v1/decks/import", data={"deck": "big"},
                          files={"file": ("big.csv", csv * 30)})  # fmt: skip
    assert too_big.status_code == 413


def test_the_chat_api_has_its_own_body_limit(client_with):
    client = client_with(security={"max_chat_body_bytes": 16 * 1024})
    messages = [{"role": "user", "content": "x" * 20000}]
    response = client.post("/v1/chat/completions", json={"model": "cardrag", "messages": messages})
    assert response.status_code == 413


def test_chat_bodies_too_large_or_not_utf8_are_4xx_in_openai_shape(client_with):
    client = client_with(security={"max_chat_body_bytes": 16 * 1024})

    def chunks():
        yield b'{"model": "cardrag", "messages": [{"role": "user", "content": "'
        for _ in range(20):
            yield b"x" * 1024
        yield b'"}]}'

    headers = {"content-type": "application/json"}
    too_large = client.post("/v1/chat/completions", content=chunks(), headers=headers)
    assert too_large.status_code == 413 and too_large.json()["error"]["message"]
    garbled = client.post("/v1/chat/completions", content=b"\xf5\xff", headers=headers)
    assert garbled.status_code == 400 and garbled.json()["error"]["message"]

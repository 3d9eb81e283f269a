"""Input limits (clear 422s), the request body limit (413) and rate limits (429)."""

import json

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from api.app import create_app
from api.schemas import MAX_CARD_ID_CHARS, MAX_LISTED_CARDS
from rag.settings import Settings
from tests.api.conftest import KEY, OTHER_KEY
from tests.conftest import make_settings

LIMIT = 16 * 1024
ASK = {"question": "What is dropout?"}


@pytest.mark.parametrize("question", [
    "", "   ", "\t\n ", "x" * 1001, "what is\x00 dropout", "what is \x1b[31mdropout",
    "what is\ndrop\x0bout", "drop\x85out", "del\x7f",
])  # fmt: skip
def test_bad_questions_get_a_422_with_a_message(client, question):
    response = client.post("/v1/ask", json={"question": question})
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["body", "question"]
    assert response.json()["detail"][0]["msg"]


@pytest.mark.parametrize(("method", "url", "body", "message"), [
    ("POST", "/v1/ask", {"question": "   "}, "question: must not be empty"),
    ("POST", "/v1/ask", {"question": "x" * 1001}, "question: must be at most 1,000 characters"),
    ("POST", "/v1/ask", {"question": "a\x07b"}, "question: must not contain control characters"),
    ("POST", "/v1/ask", {}, "question: is required"),
    ("POST", "/v1/ask", {**ASK, "k": 21}, "k: must be at most 20"),
    ("POST", "/v1/ask", {**ASK, "k": "5"}, "k: must be a whole number"),
    ("POST", "/v1/ask", {**ASK, "colour": "red"}, "colour: unknown field"),
    ("POST", "/v1/ask", {**ASK, "difficulty": ["trivial"]},
     "difficulty[0]: must be one of 'easy', 'medium' or 'hard'"),
    ("POST", "/v1/ask", {**ASK, "topic": ["Not A Slug"]},
     "topic[0]: must be lower-case letters and digits, joined by '-' or '_'"),
    ("POST", "/v1/ask", {**ASK, "history": [{"role": "user", "content": "bell\x07"}]},
     "history[0].content: must not contain control characters (line breaks and tabs are fine)"),
    ("POST", "/v1/ask", {"question": "", "k": 0},
     "k: must be at least 1; question: must not be empty"),
    ("GET", "/v1/search?q=dropout&kk=3", None, "kk: unknown parameter"),
    ("GET", "/v1/search?q=dropout&k=2&k=3", None, "k: must be given once"),
    ("GET", "/v1/search?q=dropout&min_score=nan", None, "min_score: must be a finite number"),
    ("POST", "/v1/quiz/grade", {"card_id": "Bad ID!", "answer": "x"},
     "card_id: must be lower-case letters and digits, joined by '-' or '_'"),
])  # fmt: skip
def test_a_422_says_what_is_wrong_in_one_line_for_people(client, method, url, body, message):
    """`message` is what the chat page shows; `detail` stays FastAPI's list for programs."""
    response = client.request(method, url, json=body)
    assert response.status_code == 422, response.text
    assert response.json()["message"] == message
    assert response.json()["detail"][0]["loc"] and response.json()["detail"][0]["msg"]


def test_the_schema_documents_the_422_message(client):
    schema = client.get("/openapi.json").json()
    invalid = schema["paths"]["/v1/ask"]["post"]["responses"]["422"]["content"]
    name = invalid["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    assert set(schema["components"]["schemas"][name]["required"]) == {"detail", "message"}


def test_a_body_that_is_not_json_is_a_422_saying_so(client):
    response = client.post("/v1/ask", content=b"{not json",
                           headers={"content-type": "application/json"})  # fmt: skip
    assert response.status_code == 422
    assert response.json()["message"] == "the body is not valid JSON"


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


def test_the_page_and_the_docs_do_not_spend_the_budget(client_with):
    # Loading the chat page took 4-5 requests of a caller's budget before its first question.
    client = client_with(security={"rate_limit": "2/minute"})
    for path in ("/", "/app.js", "/style.css", "/docs", "/openapi.json", "/metrics") * 2:
        assert client.get(path).status_code == 200, path
    statuses = [client.get("/v1/cards/dropout").status_code for _ in range(3)]
    assert statuses == [200, 200, 429]


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


def longest_card_ids() -> list[str]:
    """As many card ids as a list may hold, each as long as an id may be."""
    return [f"{n:05d}-" + "x" * (MAX_CARD_ID_CHARS - 6) for n in range(MAX_LISTED_CARDS)]


def test_the_longest_card_id_lists_fit_the_body_limit_of_their_routes(client):
    """Each route's body limit fits its own schema: the quiz's `seen` and an export's
    `card_ids` hold up to 5,000 ids, far past the general 16 KiB (~299 imported ids)."""
    ids = longest_card_ids()
    headers = {"content-type": "application/json"}
    pretty = json.dumps({"seen": ids}, indent=2).encode()  # whitespace counts too
    assert len(pretty) > 600_000
    quiz = client.post("/v1/quiz/next", content=pretty, headers=headers)
    assert quiz.status_code == 200, quiz.text[:300]
    export = client.post("/v1/export", json={"card_ids": ids})
    assert export.status_code == 404  # read and validated: no such cards
    too_many = client.post("/v1/quiz/next", json={"seen": [*ids, "one-more"]})
    assert too_many.status_code == 422  # the schema's limit, not the body's
    too_large = client.post("/v1/quiz/next", content=pretty + b" " * 100_000, headers=headers)
    assert too_large.status_code == 413


def test_a_422_does_not_echo_a_huge_input_back(client):
    """pydantic's `input` is the whole offending value: 5,001 ids or a 15 KB deck name came
    back in full. Short values are still echoed as they were."""
    too_many = client.post("/v1/quiz/next", json={"seen": [*longest_card_ids(), "one-more"]})
    assert too_many.status_code == 422
    assert len(too_many.content) < 2_000
    assert too_many.json()["detail"][0]["input"] == "(a list of 5,001 items, not repeated here)"
    long_name = client.post("/v1/export", json={"card_ids": ["a"], "deck_name": "d" * 15_000})
    assert long_name.status_code == 422 and len(long_name.content) < 2_000
    assert long_name.json()["detail"][0]["input"] == "d" * 200 + "… (15,000 characters)"
    short = client.post("/v1/ask", json={**ASK, "k": 21})
    assert short.json()["detail"][0]["input"] == 21


@pytest.mark.parametrize(("path", "body"), [
    ("/v1/ask", '{"question": "What is dropout?", "k": NaN}'),
    ("/v1/ask", '{"question": "What is dropout?", "k": 1e999}'),
    ("/v1/ask", '{"question": -Infinity}'),
    ("/v1/ask", '{"question": "x?", "history": [{"role": "user", "content": [NaN]}]}'),
    ("/v1/quiz/grade", '{"card_id": "dropout", "answer": NaN}'),
    ("/v1/export", '{"card_ids": ["dropout"], "format": Infinity}'),
])  # fmt: skip
def test_nan_and_infinity_in_a_body_are_a_422_not_a_500(client, path, body):
    """Python's JSON reader takes NaN and Infinity; JSON has no words for them, so the 422
    that echoed one back could not be rendered and became a 500."""
    response = client.post(path, content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    assert response.json()["message"]


@pytest.mark.parametrize(("path", "body"), [
    ("/v1/ask", {**ASK, "k": True}),
    ("/v1/ask", {**ASK, "k": "5"}),
    ("/v1/ask", {**ASK, "k": 5.0}),
    ("/v1/ask", {**ASK, "stream": "yes"}),
    ("/v1/ask", {**ASK, "stream": 1}),
    ("/v1/quiz/next", {"seed": "3"}),
    ("/v1/quiz/next", {"seed": True}),
])  # fmt: skip
def test_json_booleans_and_numbers_are_read_strictly(client, path, body):
    response = client.post(path, json=body)
    assert response.status_code == 422, response.text


def test_query_strings_still_read_numbers_from_text(client):
    found = client.get("/v1/search", params={"q": "dropout", "k": "2", "min_score": "-1"})
    assert found.status_code == 200 and len(found.json()["results"]) == 2
    assert client.get("/v1/cards", params={"limit": "1", "offset": "2"}).status_code == 200


@pytest.mark.parametrize(("path", "body"), [
    ("/v1/ask", {**ASK, "history": [{"role": "user", "content": "a\x1b[31mb"}]}),
    ("/v1/ask", {**ASK, "history": [{"role": "assistant", "content": "bell\x07"}]}),
    ("/v1/ask", {**ASK, "history": [{"role": "user", "content": "nul\x00"}]}),
    ("/v1/quiz/grade", {"card_id": "dropout", "answer": "drop\x00out"}),
    ("/v1/quiz/grade", {"card_id": "dropout", "answer": "c1\x85control"}),
])  # fmt: skip
def test_control_characters_are_refused_in_every_text_field(client, path, body):
    response = client.post(path, json=body)
    assert response.status_code == 422, response.text
    assert "control characters" in response.json()["detail"][0]["msg"]


def test_line_breaks_and_tabs_are_fine_in_text_of_several_lines(client):
    turns = [{"role": "user", "content": "What is dropout?"},
             {"role": "assistant", "content": "Dropout [1].\n\n\tMore [2].\r\n"}]  # fmt: skip
    assert client.post("/v1/ask", json={**ASK, "history": turns}).status_code == 200
    answer = {"card_id": "dropout", "answer": "It drops units\nat random."}
    assert client.post("/v1/quiz/grade", json=answer).status_code == 200


@pytest.mark.parametrize(("method", "url", "parameter"), [
    ("GET", "/v1/facets?topic=x", "topic"),
    ("GET", "/v1/decks?x=1", "x"),
    ("GET", "/v1/decks/mlops/export?format=csv&bogus=1", "bogus"),
    ("GET", "/v1/cards/dropout?x=1", "x"),
    ("POST", "/v1/quiz/next?seen=dropout", "seen"),
    ("GET", "/v1/search?q=a&q=b", "q"),
    ("GET", "/v1/search?q=dropout&k=2&k=3", "k"),
    ("GET", "/v1/cards?limit=2&limit=3", "limit"),
    ("GET", "/v1/decks/mlops/export?format=csv&format=jsonl", "format"),
])  # fmt: skip
def test_unknown_and_repeated_query_parameters_are_a_422(client, method, url, parameter):
    response = client.request(method, url, json={} if method == "POST" else None)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["query", parameter]


def test_list_parameters_may_repeat(client):
    url = "/v1/search?q=dropout&topic=regularization&topic=optimization&min_score=-1"
    found = client.get(url).json()["results"]
    assert found and {r["topic"] for r in found} <= {"regularization", "optimization"}


def test_the_openai_routes_and_the_health_probe_ignore_query_parameters(client):
    # As OpenAI's API does: clients and monitors add their own (?api-version=, ?_=).
    assert client.get("/healthz?_=1").status_code == 200
    assert client.get("/v1/models?_=1").status_code == 200
    body = {"model": "cardrag", "messages": [{"role": "user", "content": "What is dropout?"}]}
    assert client.post("/v1/chat/completions?api-version=1", json=body).status_code == 200


def test_a_question_of_several_lines_reads_as_one(client):
    # Pasted paragraphs, Shift+Enter in the page, chat UIs' multi-line prompts.
    answer = client.post("/v1/ask", json={**ASK, "question": "What is\r\n\tdropout?"})
    assert answer.status_code == 200
    found = client.get("/v1/search", params={"q": "what is\ndropout"})
    assert found.status_code == 200 and found.json()["results"]
    messages = [{"role": "user", "content": "What is\ndropout?"}]
    chat = client.post("/v1/chat/completions", json={"model": "cardrag", "messages": messages})
    assert chat.status_code == 200, chat.text
    assert client.post("/v1/ask", json={**ASK, "question": "What\n\x00is"}).status_code == 422


def test_stream_null_is_not_streamed(client):
    body = {"model": "cardrag", "stream": None,
            "messages": [{"role": "user", "content": "What is dropout?"}]}  # fmt: skip
    response = client.post("/v1/chat/completions", json=body)
    assert response.status_code == 200 and response.json()["object"] == "chat.completion"


@pytest.mark.parametrize("path", ["/v1/completions", "/v1/embeddings", "/nonexistent"])
def test_a_post_to_an_unknown_path_is_a_404(client, path):
    # Not the page's 405 "GET, HEAD": an OpenAI client given a base URL without /v1 must
    # learn that the path is wrong, not the method.
    assert client.post(path, json={}).status_code == 404
    assert client.post("/", json={}).status_code == 405  # the page itself is GET only


def openai_error(response, status: int) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    return error


def test_a_declared_oversize_chat_body_is_a_413_in_openai_shape(client_with):
    client = client_with(security={"max_chat_body_bytes": 16 * 1024})
    messages = [{"role": "user", "content": "x" * 20000}]
    response = client.post("/v1/chat/completions", json={"model": "cardrag", "messages": messages})
    assert response.request.headers["content-length"]
    assert openai_error(response, 413)["type"] == "invalid_request_error"


def test_rate_limits_on_the_chat_routes_are_429s_in_openai_shape(client_with):
    client = client_with(security={"rate_limit": "1/minute"})
    assert client.get("/v1/models").status_code == 200
    limited = client.get("/v1/models")
    assert openai_error(limited, 429)["code"] == "rate_limit_exceeded"
    assert int(limited.headers["retry-after"]) > 0
    assert "detail" in client.get("/v1/cards/dropout").json()  # the rest keeps its shape

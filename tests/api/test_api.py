import json
import re

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from rag.components import build_components, build_indexed
from rag.errors import IndexUnavailable
from rag.prompts import NOT_COVERED, NOTHING_INDEXED
from rag.testing import HashingEmbedding
from tests.conftest import shipped_card_count

CARD_KEYS = {"card_id", "question", "short_answer", "long_answer", "topic", "difficulty", "deck"}


@pytest.mark.both_chroma_modes
def test_search_returns_cards_with_scores(client):
    params = {"q": "What is backpropagation?", "k": 3, "min_score": -1}
    response = client.get("/v1/search", params=params)
    assert response.status_code == 200
    results = response.json()["results"]
    assert len(results) == 3
    assert CARD_KEYS | {"score"} <= set(results[0])
    assert results[0]["card_id"] == "backpropagation"
    assert all(-1 <= r["score"] <= 1 for r in results)


def test_search_says_how_it_corrected_a_misspelt_query(client):
    misspelt = client.get("/v1/search", params={"q": "droput at inference", "min_score": -1})
    assert misspelt.json()["corrected_query"] == "dropout at inference"
    assert "dropout" in [r["card_id"] for r in misspelt.json()["results"]]
    exact = client.get("/v1/search", params={"q": "dropout at inference"}).json()
    assert exact["corrected_query"] is None


@pytest.mark.both_chroma_modes
def test_search_drops_results_below_the_relevance_floor(client, settings):
    params = {"q": "What is backpropagation?", "k": 10}
    default = client.get("/v1/search", params=params).json()["results"]
    floor = settings.retrieval.search_min_score
    assert default and all(r["score"] >= floor for r in default)
    strict = client.get("/v1/search", params={**params, "min_score": 0.99}).json()["results"]
    everything = client.get("/v1/search", params={**params, "min_score": -1}).json()["results"]
    assert len(strict) < len(default) < len(everything) == 10
    assert client.get("/v1/search", params={**params, "min_score": 2}).status_code == 422


@pytest.mark.both_chroma_modes
def test_k_defaults_to_the_configured_retrieval_top_k(settings, fake_llm):
    retrieval = settings.retrieval.model_copy(update={"top_k": 3, "search_min_score": -1.0})
    settings = settings.model_copy(update={"retrieval": retrieval})
    components = build_indexed(settings, llm=fake_llm, embedder=HashingEmbedding())
    with TestClient(create_app(settings, components)) as client:
        search = client.get("/v1/search", params={"q": "dropout"}).json()
        assert len(search["results"]) == 3
        search = client.get("/v1/search", params={"q": "dropout", "k": 7}).json()
        assert len(search["results"]) == 7
        assert len(client.get("/v1/cards/dropout/related").json()["related"]) == 3
        answer = client.post("/v1/ask", json={"question": "What is dropout?"}).json()
        assert len(answer["cards"]) == 3


def test_search_filters_by_topic_and_difficulty(client):
    params = {"q": "dropout", "k": 10, "topic": "regularization", "difficulty": ["easy"],
              "min_score": -1}  # fmt: skip
    results = client.get("/v1/search", params=params).json()["results"]
    assert results and all(r["topic"] == "regularization" for r in results)
    assert all(r["difficulty"] == "easy" for r in results)


def test_unknown_filter_value_gives_an_empty_result(client):
    params = {"q": "dropout", "topic": "astrology"}
    empty = {"results": [], "corrected_query": None}
    assert client.get("/v1/search", params=params).json() == empty


def test_ask_returns_answer_with_valid_citations(client, fake_llm):
    # The sentence uses the backpropagation card's own words, so grounding keeps [1] however
    # many other cards the shipped corpus holds.
    fake_llm.enqueue("Backpropagation applies the chain rule to each weight [1] and more [4, 8].")
    response = client.post("/v1/ask", json={"question": "What is backpropagation?", "k": 5})
    assert response.status_code == 200
    body = response.json()
    assert body["refused"] is False and body["grounded"] is True
    first = body["citations"][0]
    assert (first["n"], first["card_id"]) == (1, "backpropagation")
    assert first["question"] == "What is backpropagation?" and "chain rule" in first["snippet"]
    for citation in body["citations"]:
        assert body["cards"][citation["n"] - 1]["card_id"] == citation["card_id"]
    assert "[8]" not in body["answer"]


def test_ask_refuses_what_the_cards_do_not_cover(client, fake_llm):
    response = client.post("/v1/ask", json={"question": "xylophone quartz zebra"})
    assert response.status_code == 200
    assert response.json()["refused"] is True
    assert response.json()["answer"] == NOT_COVERED
    assert fake_llm.prompts == []


def test_llm_failure_is_a_degraded_200_with_the_cards(client, fake_llm):
    from rag.errors import LLMUnavailable

    fake_llm.enqueue(LLMUnavailable("backend down"))
    response = client.post("/v1/ask", json={"question": "What is backpropagation?"})
    assert response.status_code == 200
    body = response.json()
    assert body["degraded"] is True and body["answer"] == "" and "backend down" in body["notice"]
    assert body["citations"][0]["card_id"] == body["cards"][0]["card_id"] == "backpropagation"


def sse_events(response) -> list[tuple[str, dict]]:
    """(event, data) pairs of a text/event-stream body."""
    events, name = [], None
    for line in response.iter_lines():
        if line.startswith("event:"):
            name = line.split(":", 1)[1].strip()
        elif line.startswith("data:"):
            events.append((name, json.loads(line.split(":", 1)[1].strip())))
    return events


def test_ask_streams_tokens_then_the_answer(client, fake_llm):
    fake_llm.enqueue("Backpropagation applies the chain rule [1] [6].")
    body = {"question": "What is backpropagation?", "stream": True}
    with client.stream("POST", "/v1/ask", json=body) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = sse_events(response)
    names = [name for name, _ in events]
    assert names[-1] == "answer" and set(names[:-1]) == {"token"} and len(names) > 3
    streamed = "".join(data["text"] for name, data in events if name == "token")
    assert "chain rule" in streamed and "[6]" not in streamed
    final = events[-1][1]
    assert final["grounded"] is True and final["citations"][0]["card_id"] == "backpropagation"


def test_an_answer_reports_the_tokens_of_its_llm_call_streamed_or_not(client, fake_llm):
    reply = "Backpropagation applies the chain rule [1]."
    fake_llm.enqueue(reply, reply)
    body = {"question": "What is backpropagation?"}
    usage = client.post("/v1/ask", json=body).json()["usage"]
    prompt = sum(len(message["content"].split()) for message in fake_llm.prompts[-1])
    assert usage == {"prompt_tokens": prompt, "completion_tokens": 6, "total_tokens": prompt + 6}
    with client.stream("POST", "/v1/ask", json={**body, "stream": True}) as response:
        assert sse_events(response)[-1][1]["usage"] == usage


def test_a_degraded_answer_reports_no_usage(client, fake_llm):
    from rag.errors import LLMUnavailable

    fake_llm.enqueue(LLMUnavailable("backend down"))
    body = client.post("/v1/ask", json={"question": "What is backpropagation?"}).json()
    assert body["degraded"] is True and body["usage"] is None


def test_a_streamed_refusal_is_one_answer_event(client, fake_llm):
    body = {"question": "xylophone quartz zebra", "stream": True}
    with client.stream("POST", "/v1/ask", json=body) as response:
        events = sse_events(response)
    assert [name for name, _ in events] == ["answer"] and events[0][1]["refused"] is True


def test_ask_with_history_returns_the_standalone_question(client, fake_llm):
    history = [{"role": "user", "content": "What does dropout do during training?"},
               {"role": "assistant", "content": "It drops units at random [1]."}]  # fmt: skip
    body = {"question": "and at inference time?", "history": history}
    answer = client.post("/v1/ask", json=body).json()
    assert "dropout" in answer["standalone_question"].lower()
    assert any("dropout" in card["card_id"] for card in answer["cards"])


def test_empty_history_turns_are_dropped_not_rewritten_from(client, fake_llm):
    """A degraded answer's `answer` is empty and a client may send it back as a turn; an
    empty history cost a follow-up rewrite (an LLM call) for nothing."""
    body = {"question": "What does dropout do?",
            "history": [{"role": "user", "content": ""}, {"role": "assistant", "content": " "}]}
    answer = client.post("/v1/ask", json=body).json()
    assert answer["standalone_question"] is None
    assert len(fake_llm.prompts) == 1  # the answer only


def test_card_by_id_and_unknown_id(client):
    card = client.get("/v1/cards/dropout")
    assert card.status_code == 200 and card.json()["card_id"] == "dropout"
    missing = client.get("/v1/cards/no-such-card")
    assert missing.status_code == 404
    assert "no-such-card" in missing.json()["detail"]


def test_bad_input_gets_422_not_a_traceback(client):
    cases = [
        client.post("/v1/ask", json={"question": ""}),
        client.post("/v1/ask", json={"question": "x" * 1001}),
        client.post("/v1/ask", json={"question": "ok?", "k": 0}),
        client.post("/v1/ask", json={"question": "ok?", "unknown": 1}),
        client.post(
            "/v1/ask", json={"question": "ok?", "history": [{"role": "system", "content": "x"}]}
        ),
        client.post("/v1/ask", json={"question": "ok?", "history": [{"role": "user"}]}),
        client.post("/v1/ask", json={"question": "ok?", "stream": "maybe"}),
        client.post("/v1/ask", content=b"not json", headers={"content-type": "application/json"}),
        client.get("/v1/search", params={"q": "x", "k": 21}),
        client.get("/v1/search"),
        client.get("/v1/search", params={"q": "x", "difficulty": "impossible"}),
    ]
    for response in cases:
        assert response.status_code == 422, response.text
        assert "Traceback" not in response.text


def test_healthz_reports_index_and_backends(client):
    body = client.get("/healthz").json()
    assert body["status"] == "ok"
    assert body["cards"] == shipped_card_count()
    assert body["llm"] == {"name": "fake", "status": "ready"}
    assert body["embedder"] == {"name": "hashing (fake)", "status": "ready"}


def test_openapi_docs_are_served(client):
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/search", "/v1/ask", "/v1/cards/{card_id}", "/healthz"} <= set(paths)


def test_ask_passes_filters_down(client, fake_llm):
    body = {"question": "What is dropout and why does it help?", "difficulty": ["medium"]}
    cards = client.post("/v1/ask", json=body).json()["cards"]
    assert cards and all(c["difficulty"] == "medium" for c in cards)
    unknown = client.post("/v1/ask", json={**body, "deck": ["no-such-deck"]}).json()
    assert unknown["refused"] is True and unknown["cards"] == []
    assert unknown["answer"] == NOT_COVERED  # cards are indexed: none match the filter


def test_an_empty_index_answers_without_errors(settings, fake_llm):
    from fastapi.testclient import TestClient

    from api.app import create_app
    from rag.components import build_components
    from rag.testing import HashingEmbedding

    empty = build_components(settings, llm=fake_llm, embedder=HashingEmbedding())
    with TestClient(create_app(settings, empty)) as client:
        assert client.get("/healthz").json()["cards"] == 0
        found = client.get("/v1/search", params={"q": "dropout"}).json()
        assert found == {"results": [], "corrected_query": None}
        answer = client.post("/v1/ask", json={"question": "What is dropout?"}).json()
        assert answer["refused"] and answer["answer"] == NOTHING_INDEXED  # not the question's fault


@pytest.fixture
def other_encoder_client(components, settings):
    """The shared components ingested with the hashing fake; this server is configured
    with the bundled encoder (a fake of another size stands in for its vectors)."""
    other = settings.model_copy(update={"embedder": settings.embedder.model_copy(
        update={"backend": "onnx"})})  # fmt: skip
    served = build_components(other, embedder=HashingEmbedding(dimensions=256))
    with TestClient(create_app(other, served)) as client:
        yield client


def test_cards_embedded_by_another_encoder_give_503_not_wrong_results(other_encoder_client):
    client = other_encoder_client
    search = client.get("/v1/search", params={"q": "What is dropout?"})
    assert search.status_code == 503
    assert "card index is unavailable" in search.json()["detail"]
    assert client.get("/healthz").status_code == 503


def test_streams_open_only_once_the_index_is_readable(other_encoder_client):
    """The status line of a stream goes out before the answer: the index is opened first,
    so an unreadable one is a 503 with its message, as without streaming."""
    client = other_encoder_client
    asked = client.post("/v1/ask", json={"question": "What is dropout?", "stream": True})
    assert asked.status_code == 503
    assert "card index is unavailable" in asked.json()["detail"]
    chat = client.post("/v1/chat/completions", json={
        "model": "cardrag", "stream": True,
        "messages": [{"role": "user", "content": "What is dropout?"}]})  # fmt: skip
    assert chat.status_code == 503
    assert chat.json()["error"]["type"] == "server_error"
    assert "card index is unavailable" in chat.json()["error"]["message"]


@pytest.mark.parametrize(("failure", "status", "message"), [
    (IndexUnavailable("/srv/data/chroma: the collection went away"), 503,
     "card index is unavailable"),
    (RuntimeError("exploded in /srv/cardrag/rag/answer.py"), 500, "internal server error"),
])  # fmt: skip
def test_a_failure_inside_an_ask_stream_is_an_error_event(
    client, components, monkeypatch, failure, status, message
):
    def failing(*args, **kwargs):
        yield "Backpropagation "
        raise failure

    monkeypatch.setattr(components.answerer, "stream", failing)
    body = {"question": "What is backpropagation?", "stream": True}
    with client.stream("POST", "/v1/ask", json=body) as response:
        assert response.status_code == 200
        events = sse_events(response)
    assert events[0] == ("token", {"text": "Backpropagation "})
    name, data = events[-1]
    assert name == "error" and data["status"] == status and message in data["detail"]
    assert "/srv" not in json.dumps(events)


@pytest.mark.parametrize(("method", "path", "allow"), [
    ("GET", "/v1/ask", "POST"),
    ("OPTIONS", "/v1/ask", "POST"),
    ("DELETE", "/v1/search", "GET, HEAD"),  # HEAD works wherever GET does (api.head)
    ("PUT", "/v1/decks/mlops", "DELETE"),
    ("POST", "/healthz", "GET, HEAD"),
    ("POST", "/v1/cards/dropout", "GET, HEAD"),
])  # fmt: skip
def test_a_wrong_method_on_an_api_path_is_a_405_naming_the_right_one(
    client, method, path, allow
):
    response = client.request(method, path)
    assert response.status_code == 405, response.text
    assert response.headers["allow"] == allow
    assert response.json()["detail"]


def test_head_works_wherever_get_does(client):
    for path in ("/healthz", "/v1/search?q=dropout", "/v1/cards/dropout", "/"):
        head, get = client.head(path), client.get(path)
        assert head.status_code == get.status_code == 200, path
        assert head.content == b"" and head.headers["content-type"] == get.headers["content-type"]
    assert client.head("/v1/ask").status_code == 405  # no GET there either
    assert client.head("/v1/no-such-route").status_code == 404


def test_the_docs_page_loads_only_files_the_server_serves_itself(client):
    # FastAPI's own page loads Swagger UI from cdn.jsdelivr.net: blank offline.
    page = client.get("/docs")
    assert page.status_code == 200
    assets = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", page.text)
    assets += re.findall(r"""url:\s*["']([^"']+)["']""", page.text)  # the OpenAPI schema
    assert assets and not [a for a in assets if "//" in a], assets
    for asset in assets:
        assert client.get(asset).status_code == 200, asset
    assert client.get("/redoc").status_code == 404  # one docs page


def test_start_up_builds_the_search_indexes_before_the_first_search(components, settings):
    # BM25 and the speller of the live collection are built by the app's start-up, so the
    # first search does not pay for them (463 ms on the shipped corpus, bench.search_latency).
    components.retriever._indexes = None
    with TestClient(create_app(settings, components)):
        built = components.retriever._indexes
        assert built is not None
        assert built.name == components.store.current().name
        assert built.lexical.by_id.keys() == {c.id for c in components.store.all_cards()}

"""Request ids, the structured access log, error bodies without internals, /metrics."""

import json
import logging
import re

import pytest

from api.logging_config import log_config
from rag.errors import IndexBusy, IndexUnavailable, LLMUnavailable, ModelNotAvailable
from rag.prompts import NOT_COVERED

HEX_ID = re.compile(r"[0-9a-f]{32}")


def access_lines(caplog) -> list[dict]:
    return [json.loads(r.getMessage()) for r in caplog.records if r.name == "cardrag.access"]


def test_every_response_carries_a_request_id(client, fake_llm):
    fake_llm.enqueue(ModelNotAvailable("no model file"))
    responses = [
        client.get("/healthz"),
        client.get("/v1/cards/no-such-card"),  # 404
        client.get("/no-such-route"),  # 404 outside any route
        client.put("/v1/ask"),  # 405
        client.post("/v1/ask", json={"question": ""}),  # 422
        client.post("/v1/ask", json={"question": "What is backpropagation?"}),  # 503
        client.post("/v1/ask", content=b"{" * 20000),  # 413
    ]
    assert [r.status_code for r in responses] == [200, 404, 404, 405, 422, 503, 413]
    ids = [r.headers["x-request-id"] for r in responses]
    assert all(HEX_ID.fullmatch(i) for i in ids) and len(set(ids)) == len(ids)


def test_a_sane_incoming_request_id_is_kept_and_others_replaced(client):
    kept = client.get("/healthz", headers={"X-Request-ID": "trace-42.a_b:c"})
    assert kept.headers["x-request-id"] == "trace-42.a_b:c"
    for insane in ("x" * 200, "has space", "<script>", "-leading-dash"):
        replaced = client.get("/healthz", headers={"X-Request-ID": insane})
        assert HEX_ID.fullmatch(replaced.headers["x-request-id"])


def test_one_json_access_line_per_request(client, caplog):
    caplog.set_level(logging.INFO, logger="cardrag.access")
    response = client.get("/v1/cards/dropout", headers={"X-Request-ID": "req-1"})
    client.get("/v1/search", params={"q": "dropout", "k": 0})
    first, second = access_lines(caplog)
    assert first["request_id"] == response.headers["x-request-id"] == "req-1"
    assert first["method"] == "GET" and first["route"] == "/v1/cards/{card_id}"
    assert first["status"] == 200 and first["duration_ms"] >= 0
    assert first["caller"] is None  # no keys configured
    assert second["route"] == "/v1/search" and second["status"] == 422


def test_an_unexpected_error_is_a_plain_500_with_a_request_id(client, components, monkeypatch,
                                                               caplog):  # fmt: skip
    def broken(*args, **kwargs):
        raise RuntimeError("exploded in /srv/cardrag/rag/secret_module.py")

    for method in ("search", "read_and_search"):  # answers, and the search route
        monkeypatch.setattr(components.retriever, method, broken)
    caplog.set_level(logging.INFO)
    response = client.get("/v1/search", params={"q": "dropout"})
    assert response.status_code == 500
    assert response.json() == {"detail": "internal server error"}
    assert "Traceback" not in response.text and "/srv" not in response.text
    (line,) = access_lines(caplog)
    assert line["status"] == 500 and line["request_id"] == response.headers["x-request-id"]
    logged = [r for r in caplog.records if r.name == "cardrag.api" and r.exc_info]
    assert logged and response.headers["x-request-id"] in logged[0].getMessage()


def test_a_missing_model_is_a_503_that_names_no_path(client, fake_llm):
    fake_llm.enqueue(ModelNotAvailable("model file /srv/models/qwen.gguf is missing"))
    response = client.post("/v1/ask", json={"question": "What is backpropagation?"})
    assert response.status_code == 503
    assert "/srv" not in response.text and response.json()["detail"]


@pytest.mark.parametrize(("error", "status"), [
    (IndexUnavailable("/srv/data/chroma: cannot open the Chroma index"), 503),
    (IndexBusy("/srv/data: another ingest is writing (pid 7 holds /srv/data/lock)"), 409),
])  # fmt: skip
def test_index_errors_name_no_path(client, components, monkeypatch, error, status):
    def failing(*args, **kwargs):
        raise error

    for method in ("search", "read_and_search"):  # answers, and the search route
        monkeypatch.setattr(components.retriever, method, failing)
    response = client.get("/v1/search", params={"q": "dropout"})
    assert response.status_code == status
    assert "/srv" not in response.text and response.json()["detail"]
    chat = client.post("/v1/chat/completions", json={
        "model": "cardrag", "messages": [{"role": "user", "content": "What is dropout?"}]})
    assert "/srv" not in chat.text


def test_metrics_count_requests_per_route_and_time_answers(client):
    client.get("/v1/search", params={"q": "dropout"})
    client.get("/v1/cards/dropout")
    client.post("/v1/ask", json={"question": "What is backpropagation?"})
    client.post("/v1/ask", json={"question": ""})
    text = client.get("/metrics").text
    assert 'http_requests_total{handler="/v1/search",method="GET",status="200"} 1.0' in text
    card = 'http_requests_total{handler="/v1/cards/{card_id}",method="GET",status="200"} 1.0'
    assert card in text
    assert 'http_requests_total{handler="/v1/ask",method="POST",status="422"} 1.0' in text
    assert 'http_request_duration_seconds_count{handler="/v1/ask",method="POST"} 2.0' in text
    assert 'cardrag_retrieval_seconds_count{operation="search"} 1.0' in text
    assert 'cardrag_retrieval_seconds_count{operation="ask"} 1.0' in text
    assert 'cardrag_generation_seconds_count{stage="generate"} 1.0' in text


def test_metrics_count_answers_by_outcome_so_an_llm_outage_shows(client, fake_llm):
    """A degraded answer is a 200: only this count tells a monitor that the LLM is down."""
    client.post("/v1/ask", json={"question": "What is backpropagation?"})
    fake_llm.enqueue(LLMUnavailable("backend down"))
    assert client.post("/v1/ask", json={"question": "What is dropout?"}).json()["degraded"]
    fake_llm.enqueue(NOT_COVERED)
    assert client.post("/v1/ask", json={"question": "What is attention?"}).json()["refused"]
    text = client.get("/metrics").text
    for outcome in ("answered", "degraded", "refused"):
        assert f'cardrag_answers_total{{operation="ask",outcome="{outcome}"}} 1.0' in text


def test_urls_that_only_redirect_add_no_metric_series(client):
    """Each URL with a trailing slash (redirected, or refused before that) was a series of
    its own under its raw path: /metrics grew with every distinct URL a client sent."""
    for n in range(3):
        assert client.get(f"/v1/cards/rand-{n}/", follow_redirects=False).status_code == 307
    client.get("/v1/cards/dropout")
    text = client.get("/metrics").text
    assert "rand-" not in text
    assert 'http_requests_total{handler="/v1/cards/{card_id}",method="GET",status="200"}' in text


@pytest.mark.parametrize("stream", [False, True])
def test_metrics_time_chat_completions_too(client, stream):
    body = {"model": "cardrag", "stream": stream,
            "messages": [{"role": "user", "content": "What is backpropagation?"}]}  # fmt: skip
    assert client.post("/v1/chat/completions", json=body).status_code == 200
    text = client.get("/metrics").text
    assert 'cardrag_retrieval_seconds_count{operation="chat"} 1.0' in text
    assert 'cardrag_generation_seconds_count{stage="generate"} 1.0' in text


def test_serve_prints_access_lines_as_bare_json():
    config = log_config()
    access = config["loggers"]["cardrag.access"]
    assert access["level"] == "INFO" and access["propagate"] is False
    handler = config["handlers"][access["handlers"][0]]
    assert config["formatters"][handler["formatter"]]["format"] == "%(message)s"
    assert config["loggers"]["cardrag"]["level"] == "INFO"

"""/v1/chat/completions: conversation handling and OpenAI-shaped errors (TestClient).

The same route through the openai SDK and LlamaIndex: tests/clients/test_openai_clients.py.
"""

import json

import pytest

from rag.errors import IndexUnavailable, LLMUnavailable

QUESTION = "What is backpropagation?"


def chat(client, messages, **params):
    return client.post("/v1/chat/completions", json={"model": "cardrag", "messages": messages,
                                                     **params})  # fmt: skip


def assert_openai_error(response, status, param=None):
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    assert "Traceback" not in response.text
    if param is not None:
        assert error["param"] == param
    return error


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "cardrag"}, "messages"),
        ({"model": "cardrag", "messages": []}, "messages"),
        ({"messages": [{"role": "user", "content": QUESTION}]}, "model"),
        ({"model": "cardrag", "messages": [{"role": "wizard", "content": "x"}]}, None),
        ({"model": "cardrag", "messages": [{"role": "user", "content": QUESTION}],
          "stream": "maybe"}, "stream"),
        ({"model": "cardrag", "messages": [{"role": "user", "content": "x" * 1001}]}, None),
        ({"model": "cardrag", "messages": [{"role": "user", "content": QUESTION}],
          "cardrag": {"k": 99}}, None),
    ],
)
def test_invalid_requests_get_openai_shaped_400s(client, body, param):
    error = assert_openai_error(client.post("/v1/chat/completions", json=body), 400, param)
    assert error["type"] == "invalid_request_error"


def test_a_body_that_is_not_json_gets_an_openai_shaped_400(client):
    response = client.post("/v1/chat/completions", content=b"{not json",
                           headers={"content-type": "application/json"})  # fmt: skip
    assert_openai_error(response, 400)


def test_the_last_message_must_be_a_text_question(client):
    ends_with_assistant = [{"role": "user", "content": QUESTION},
                           {"role": "assistant", "content": "It is [1]."}]  # fmt: skip
    assert "last message" in assert_openai_error(chat(client, ends_with_assistant), 400,
                                                 "messages")["message"]  # fmt: skip
    image = [{"role": "user", "content": [
        {"type": "text", "text": "What is in this picture?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
    ]}]  # fmt: skip
    assert "text questions only" in assert_openai_error(chat(client, image), 400)["message"]


def test_text_parts_are_joined_into_the_question(client, fake_llm):
    text_parts = [{"type": "text", "text": t} for t in ("What is ", "backpropagation?")]
    parts = [{"role": "user", "content": text_parts}]
    body = chat(client, parts).json()
    assert body["citations"][0]["card_id"] == "backpropagation"


def test_a_long_conversation_is_cut_to_its_recent_turns(client, fake_llm):
    turns = []
    for i in range(40):
        turns += [{"role": "user", "content": f"question {i} " + "x" * 5000},
                  {"role": "assistant", "content": f"answer {i}"}]  # fmt: skip
    response = chat(client, [*turns, {"role": "user", "content": "and what is dropout?"}])
    assert response.status_code == 200, response.text
    rewrite_prompt = fake_llm.prompts[0][-1]["content"]
    assert "question 39" in rewrite_prompt and "question 0 " not in rewrite_prompt


def test_sampling_parameters_and_unknown_fields_are_accepted(client, fake_llm):
    response = chat(client, [{"role": "user", "content": QUESTION}], temperature=1.7,
                    top_p=0.5, max_tokens=5, user="u1", seed=3, stream_options=None,
                    tool_choice="none", response_format={"type": "text"})  # fmt: skip
    assert response.status_code == 200, response.text


def stream_failing_with(client, components, monkeypatch, error: Exception):
    """The data lines of a streamed chat completion whose answer raises `error`, and the
    response."""

    def failing(*args, **kwargs):
        raise error

    monkeypatch.setattr(components.answerer, "ask", failing)
    body = {"model": "cardrag", "messages": [{"role": "user", "content": QUESTION}],
            "stream": True}  # fmt: skip
    with client.stream("POST", "/v1/chat/completions", json=body) as response:
        data = [line[5:].strip() for line in response.iter_lines() if line.startswith("data:")]
    return data, response


def test_a_failure_inside_a_stream_is_an_openai_error_event(
    client, components, monkeypatch, caplog
):
    error = RuntimeError("index went away")
    data, response = stream_failing_with(client, components, monkeypatch, error)
    assert json.loads(data[0])["choices"][0]["delta"]["role"] == "assistant"
    assert json.loads(data[-1])["error"]["type"] == "server_error"
    assert "index went away" not in " ".join(data)
    request_id = response.headers["x-request-id"]
    assert any(request_id in r.getMessage() and r.exc_info for r in caplog.records)


def test_a_known_failure_inside_a_stream_says_what_failed(client, components, monkeypatch):
    unavailable = IndexUnavailable("/srv/data: the collection went away")
    data, _ = stream_failing_with(client, components, monkeypatch, unavailable)
    error = json.loads(data[-1])["error"]
    assert error["type"] == "server_error" and "card index is unavailable" in error["message"]
    assert "/srv" not in " ".join(data)


@pytest.mark.parametrize("params", [
    {"stream": "yes"}, {"stream": 1}, {"n": "1"}, {"n": True}, {"logprobs": "false"},
    {"cardrag": {"k": True}}, {"cardrag": {"k": "5"}},
])  # fmt: skip
def test_booleans_and_numbers_are_read_strictly(client, params):
    assert_openai_error(chat(client, [{"role": "user", "content": QUESTION}], **params), 400)


@pytest.mark.parametrize("messages", [
    [{"role": "user", "content": "a\x1b[31m answer"}, {"role": "user", "content": QUESTION}],
    [{"role": "assistant", "content": "bell\x07"}, {"role": "user", "content": QUESTION}],
    [{"role": "user", "content": [{"type": "text", "text": "What is\x00 dropout?"}]}],
])  # fmt: skip
def test_control_characters_in_messages_are_refused(client, messages):
    assert_openai_error(chat(client, messages), 400)


def test_line_breaks_in_earlier_messages_are_fine(client):
    messages = [{"role": "user", "content": "Two lines:\n\tindented"},
                {"role": "assistant", "content": "An answer [1].\r\n\nMore [2]."},
                {"role": "user", "content": QUESTION}]  # fmt: skip
    assert chat(client, messages).status_code == 200


def test_a_wrong_method_is_a_405_in_openai_shape(client):
    response = client.get("/v1/chat/completions")
    assert_openai_error(response, 405)
    assert response.headers["allow"] == "POST"


def test_other_routes_keep_their_own_error_shape(client):
    assert "detail" in client.post("/v1/ask", json={"question": ""}).json()


def data_lines(client, **params):
    """The data lines of a streamed chat completion of QUESTION."""
    body = {"model": "cardrag", "messages": [{"role": "user", "content": QUESTION}],
            "stream": True, **params}  # fmt: skip
    with client.stream("POST", "/v1/chat/completions", json=body) as response:
        assert response.status_code == 200
        return [line[5:].strip() for line in response.iter_lines() if line.startswith("data:")]


USAGE_KEYS = {"prompt_tokens", "completion_tokens", "total_tokens"}


def words(messages) -> int:
    """The fake LLM's token count of a prompt: its words (rag.testing.FakeLLM)."""
    return sum(len(message["content"].split()) for message in messages)


def test_a_completion_reports_the_tokens_of_its_llm_calls(client, fake_llm):
    fake_llm.enqueue("Backpropagation applies the chain rule to the loss [1].")
    usage = chat(client, [{"role": "user", "content": QUESTION}]).json()["usage"]
    prompt = words(fake_llm.prompts[-1])
    assert usage == {"prompt_tokens": prompt, "completion_tokens": 9, "total_tokens": prompt + 9}


def test_a_follow_up_counts_the_rewrite_and_the_answer(client, fake_llm):
    fake_llm.enqueue("What is backpropagation used for?", "It computes gradients [1].")
    messages = [{"role": "user", "content": QUESTION},
                {"role": "assistant", "content": "It applies the chain rule [1]."},
                {"role": "user", "content": "And what is it used for?"}]  # fmt: skip
    usage = chat(client, messages).json()["usage"]
    rewrite, answer = fake_llm.prompts[-2:]
    assert usage["prompt_tokens"] == words(rewrite) + words(answer)
    assert usage["completion_tokens"] == 5 + 4


def test_a_refusal_by_the_gate_calls_no_llm_and_counts_zero(client, fake_llm):
    refused = chat(client, [{"role": "user", "content": "xylophone quartz zebra"}]).json()
    assert refused["usage"] == dict.fromkeys(USAGE_KEYS, 0) and not fake_llm.prompts


def test_a_failed_llm_call_makes_the_usage_unknown_not_zero(client, fake_llm):
    fake_llm.enqueue(LLMUnavailable("down"))
    body = chat(client, [{"role": "user", "content": QUESTION}]).json()
    assert body["cardrag"]["degraded"] and body["usage"] is None


def test_a_stream_sends_usage_last_when_asked(client):
    # OpenAI's spec: one more chunk before [DONE], with usage and no choices; every other
    # chunk carries "usage": null.
    data = data_lines(client, stream_options={"include_usage": True})
    assert data[-1] == "[DONE]"
    *chunks, usage_chunk = [json.loads(line) for line in data[:-1]]
    assert usage_chunk["choices"] == [] and usage_chunk["object"] == "chat.completion.chunk"
    assert usage_chunk["usage"] == chat(client, [{"role": "user", "content": QUESTION}]).json()[
        "usage"] and usage_chunk["usage"]["completion_tokens"] > 0  # fmt: skip
    assert usage_chunk["id"] == chunks[0]["id"]
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop" and chunks[-1]["citations"]
    assert all("usage" in chunk and chunk["usage"] is None for chunk in chunks)


@pytest.mark.parametrize("params", [{}, {"stream_options": {"include_usage": False}},
                                    {"stream_options": None}])  # fmt: skip
def test_a_stream_sends_no_usage_unless_asked(client, params):
    data = data_lines(client, **params)
    assert data[-1] == "[DONE]"
    chunks = [json.loads(line) for line in data[:-1]]
    assert all("usage" not in chunk and chunk["choices"] for chunk in chunks)


def test_stream_options_are_read_strictly(client):
    response = chat(client, [{"role": "user", "content": QUESTION}], stream=True,
                    stream_options={"include_usage": "yes"})  # fmt: skip
    assert_openai_error(response, 400, "stream_options.include_usage")

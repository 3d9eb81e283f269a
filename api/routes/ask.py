"""POST /v1/ask: a cited answer from the cards, or a plain "not covered"; streamed on request.

An LLM fault never becomes an error here: the Answerer turns it into a degraded answer
(200, "degraded": true, the retrieved cards cited), because the cards alone still help.
"""

import json
from collections.abc import Iterator

from fastapi import APIRouter
from sse_starlette import EventSourceResponse

from api.deps import ComponentsDep, MetricsDep
from api.metrics import Metrics
from api.schemas import AskRequest, AskResponse
from rag.answer import Answer, Answerer

router = APIRouter(tags=["answers"])


@router.post(
    "/v1/ask",
    response_model=AskResponse,
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": "The answer, or with \"stream\": true a stream of `token` events "
            "({\"text\"}) ending with one `answer` event (the AskResponse).",
        }
    },
)
def ask(
    request: AskRequest, components: ComponentsDep, metrics: MetricsDep
) -> AskResponse | EventSourceResponse:
    if request.stream:
        return EventSourceResponse(answer_events(components.answerer, request, metrics), ping=10)
    answer = components.answerer.ask(
        request.question, request.k, request.filters(), request.turns()
    )
    metrics.observe_answer(answer.timings)
    return AskResponse.from_answer(answer)


def answer_events(
    answerer: Answerer, request: AskRequest, metrics: Metrics
) -> Iterator[dict[str, str]]:
    """Server-sent events for one answer. sse-starlette runs this (sync) iterator in a worker
    thread and stops iterating when the client goes away, which stops the LLM stream too."""
    events = answerer.stream(request.question, request.k, request.filters(), request.turns())
    for event in events:
        if isinstance(event, Answer):
            metrics.observe_answer(event.timings)
            yield {"event": "answer", "data": AskResponse.from_answer(event).model_dump_json()}
        else:
            yield {"event": "token", "data": json.dumps({"text": event})}

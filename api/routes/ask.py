"""POST /v1/ask: a cited answer from the cards, or a plain "not covered"; streamed on request.

An LLM fault never becomes an error here: the Answerer turns it into a degraded answer
(200, "degraded": true, the retrieved cards cited), because the cards alone still help.

A stream's status line goes out before the answer is computed, so the index is opened
first: an index this server cannot read is still a 503 with its message. What fails after
the stream started can only be told in it: one `error` event ({"status", "detail"}).
"""

import json
from collections.abc import Generator

from fastapi import APIRouter, Request
from sse_starlette import EventSourceResponse

from api.deps import ComponentsDep, MetricsDep
from api.errors import stream_failure
from api.metrics import Metrics
from api.schemas import AskRequest, AskResponse
from api.streams import closed_when_done
from rag.answer import Answer, Answerer

router = APIRouter(tags=["answers"])


@router.post(
    "/v1/ask",
    response_model=AskResponse,
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": "The answer, or with \"stream\": true a stream of `token` events "
            "({\"text\"}) ending with one `answer` event (the AskResponse), or with one "
            "`error` event ({\"status\", \"detail\"}) if the answer failed after the stream "
            "started.",
        }
    },
)
def ask(
    request: AskRequest, components: ComponentsDep, metrics: MetricsDep, http: Request
) -> AskResponse | EventSourceResponse:
    if request.stream:
        components.store.current()  # IndexUnavailable here is still a 503
        events = answer_events(components.answerer, request, metrics, http)
        return EventSourceResponse(closed_when_done(events), ping=10)
    answer = components.answerer.ask(
        request.question, request.k, request.filters(), request.turns()
    )
    metrics.observe_answer(answer)
    return AskResponse.from_answer(answer)


def answer_events(
    answerer: Answerer, request: AskRequest, metrics: Metrics, http: Request
) -> Generator[dict[str, str], None, None]:
    """Server-sent events for one answer, each computed in a worker thread; closed when the
    client goes away (api.streams), which stops the LLM stream too."""
    events = answerer.stream(request.question, request.k, request.filters(), request.turns())
    try:
        for event in events:
            if isinstance(event, Answer):
                metrics.observe_answer(event)
                yield {"event": "answer", "data": AskResponse.from_answer(event).model_dump_json()}
            else:
                yield {"event": "token", "data": json.dumps({"text": event})}
    except Exception as exc:
        status, message = stream_failure(http, exc)
        yield {"event": "error", "data": json.dumps({"status": status, "detail": message})}

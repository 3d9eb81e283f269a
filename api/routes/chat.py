"""OpenAI-compatible chat: POST /v1/chat/completions and GET /v1/models, model "cardrag".

Chat front ends (Open WebUI, LibreChat, LobeChat...) and OpenAI SDKs talk to cardrag as to
any OpenAI server. The last user message is the question, earlier user and assistant turns
are the history (follow-ups are rewritten to stand alone, as in /v1/ask). The content carries
[n] markers; `citations` and `cardrag` are extra fields standard clients ignore.

Streaming sends the grounded answer, not the model's raw tokens. Grounding may move or drop
a marker, the output guard may remove a sentence, and an answer no card supports becomes
"not covered", all after generation; an OpenAI client has no way to take back text it has
shown, so a raw-token stream would show citations and claims the final answer does not make.
The stream therefore opens at once (the role chunk), and the content follows as soon as the
answer is grounded, in word-sized chunks. /v1/ask streams raw tokens because its own page
replaces them with the final answer. `usage` counts the tokens of every LLM call of the
answer (api.schemas.Usage); a stream sends it only when stream_options.include_usage asks.

Errors on these routes use OpenAI's shape, {"error": {"message", "type", "param", "code"}},
validation errors included (400, as OpenAI sends), so clients show the message; those the
middleware sends (401, 413, 429) too (api.openai_errors). A stream opens once the index
is open, so an unreadable index is still a 503; what fails later is an error event.
"""

import json
import logging
import re
from collections.abc import Callable, Coroutine, Generator
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import ValidationError
from sse_starlette import EventSourceResponse
from starlette.exceptions import HTTPException

from api.deps import ComponentsDep, MetricsDep
from api.errors import status_and_message, stream_failure
from api.metrics import Metrics
from api.openai_errors import OpenAIError, error_type
from api.openai_schemas import (
    MODEL_ID,
    AssistantMessage,
    CardragExtras,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatMessageIn,
    Choice,
    ChunkChoice,
    Delta,
    ModelCard,
    ModelList,
    OpenAIErrorResponse,
    Usage,
    completion_id,
    now,
    unsupported_parameter,
)
from api.schemas import MAX_HISTORY_TURNS, MAX_TURN_CHARS, AskRequest, citations_of
from api.streams import closed_when_done
from rag.answer import Answer, Answerer
from rag.errors import CardragError

log = logging.getLogger("cardrag.api")

# Chat UIs send the whole conversation. The follow-up rewrite reads only the last few turns
# (rag.prompts.HISTORY_TURNS), so older turns are dropped and long ones cut, rather than
# refusing a long conversation that /v1/ask's limits were not written for.
_PIECES = re.compile(r"\S+\s*|\s+")


class OpenAIRoute(APIRoute):
    """Routes whose errors, validation included, come back in OpenAI's error shape (FastAPI's
    documented custom-route pattern; the app-wide handlers keep {"detail"} for the rest)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def handle_in_openai_shape(request: Request) -> Response:
            try:
                return await handle(request)
            except OpenAIError as exc:
                return exc.response()
            except RequestValidationError as exc:
                return validation_error(exc.errors()).response()
            except CardragError as exc:
                status, message = status_and_message(request, exc)
                return OpenAIError(status, message, type=error_type(status)).response()
            except HTTPException as exc:  # reading the body: not UTF-8 (400), too large (413)
                return OpenAIError(exc.status_code, str(exc.detail)).response(exc.headers)
            except Exception:
                log.exception("unhandled error on %s", request.url.path)
                return OpenAIError(500, "internal server error", type="server_error").response()

        return handle_in_openai_shape


ERRORS = {
    400: {"model": OpenAIErrorResponse, "description": "Invalid or unsupported request."},
    404: {"model": OpenAIErrorResponse, "description": "Unknown model."},
}
router = APIRouter(tags=["openai"], route_class=OpenAIRoute)


@router.get("/v1/models", response_model=ModelList)
def list_models() -> ModelList:
    return ModelList(data=[ModelCard()])


@router.get("/v1/models/{model}", response_model=ModelCard, responses=ERRORS)
def get_model(model: str) -> ModelCard:
    require_known_model(model)
    return ModelCard()


@router.post(
    "/v1/chat/completions",
    response_model=ChatCompletion,
    responses={
        **ERRORS,
        200: {
            "content": {"text/event-stream": {}},
            "description": 'The answer; with "stream": true, chat.completion.chunk events '
            "ending with data: [DONE] (the last chunk with choices carries citations; with "
            "stream_options.include_usage, a chunk with usage and no choices follows it).",
        },
    },
)
def chat_completions(
    request: ChatCompletionRequest, components: ComponentsDep, metrics: MetricsDep, http: Request
) -> ChatCompletion | EventSourceResponse:
    require_known_model(request.model)
    if refused := unsupported_parameter(request):
        param, message = refused
        raise OpenAIError(400, message, param=param, code="unsupported_parameter")
    ask = ask_request(request)
    answerer = components.answerer
    if request.stream:
        components.store.current()  # IndexUnavailable here is still a 503
        include_usage = bool(request.stream_options and request.stream_options.include_usage)
        chunks = completion_chunks(answerer, ask, metrics, http, include_usage)
        return EventSourceResponse(closed_when_done(chunks), sep="\n", ping=15)
    answer = answerer.ask(ask.question, ask.k, ask.filters(), ask.turns())
    metrics.observe_answer(answer, "chat")
    message = AssistantMessage(content=answer_text(answer))
    return ChatCompletion(id=completion_id(), created=now(), choices=[Choice(message=message)],
                          citations=citations_of(answer),
                          cardrag=CardragExtras.from_answer(answer),
                          usage=Usage.of(answer))  # fmt: skip


def require_known_model(model: str) -> None:
    if model != MODEL_ID:
        raise OpenAIError(404, f"The model {model!r} does not exist; this server serves "
                          f"{MODEL_ID!r}.", param="model", code="model_not_found")  # fmt: skip


def ask_request(request: ChatCompletionRequest) -> AskRequest:
    """The conversation as a /v1/ask request, so both routes share one set of limits."""
    *earlier, last = request.messages
    if last.role != "user":
        raise OpenAIError(400, "The last message must be the user's question.",
                          param="messages")  # fmt: skip
    if last.has_non_text_parts():
        raise OpenAIError(400, "cardrag answers text questions only (no images, audio or "
                          "files).", param="messages")  # fmt: skip
    options = request.cardrag
    try:
        return AskRequest(question=last.text(), k=options.k, topic=options.topic,
                          difficulty=options.difficulty, deck=options.deck,
                          history=history_turns(earlier))  # fmt: skip
    except ValidationError as exc:
        raise validation_error(exc.errors(), prefix=("messages",)) from exc


def history_turns(messages: list[ChatMessageIn]) -> list[dict[str, str]]:
    """Earlier user and assistant turns with text; system, developer and tool messages are
    not history a follow-up can refer to, and cardrag's instructions are its own."""
    turns = [
        {"role": m.role, "content": text[:MAX_TURN_CHARS]}
        for m in messages
        if m.role in ("user", "assistant") and (text := m.text()).strip()
    ]
    return turns[-MAX_HISTORY_TURNS:]


def validation_error(errors: Any, prefix: tuple[str, ...] = ()) -> OpenAIError:
    """The first validation problem as one OpenAI-shaped 400, naming the parameter."""
    first = list(errors)[0] if errors else {"loc": (), "msg": "invalid request"}
    loc = [str(part) for part in first.get("loc", ()) if part != "body"]
    if prefix and loc and loc[0] == "question":
        loc = [*prefix, "content"]  # the question is the last message's content
    param = ".".join(loc) or None
    message = f"{param}: {first['msg']}" if param else str(first["msg"])
    return OpenAIError(400, message, param=param)


def answer_text(answer: Answer) -> str:
    """The content a chat UI shows. A degraded answer has no generated text: the notice and
    the matching cards, each with its marker, stand in for it."""
    if not answer.degraded:
        return answer.answer
    cards = [f"[{c.n}] {c.question} {c.snippet}" for c in answer.citations]
    return "\n\n".join([answer.notice or "", *cards])


def completion_chunks(
    answerer: Answerer,
    ask: AskRequest,
    metrics: Metrics,
    http: Request,
    include_usage: bool = False,
) -> Generator[dict[str, str], None, None]:
    """chat.completion.chunk events: the role at once, the grounded text in word-sized
    pieces, a last chunk with finish_reason and the citations, then [DONE]. With
    `include_usage` (stream_options), as OpenAI's spec has it: a chunk with `usage` and
    `choices: []` just before [DONE], and `"usage": null` on every other chunk."""
    cid, created = completion_id(), now()

    def event(body: ChatCompletionChunk) -> dict[str, str]:
        data = body.model_dump(mode="json", exclude_none=True)
        if include_usage:
            data.setdefault("usage", None)
        return {"data": json.dumps(data, separators=(",", ":"))}

    def chunk(delta: Delta, answer: Answer | None = None) -> dict[str, str]:
        return event(ChatCompletionChunk(
            id=cid,
            created=created,
            choices=[ChunkChoice(delta=delta, finish_reason="stop" if answer else None)],
            citations=citations_of(answer) if answer else None,
            cardrag=CardragExtras.from_answer(answer) if answer else None,
        ))  # fmt: skip

    yield chunk(Delta(role="assistant", content=""))
    try:
        answer = answerer.ask(ask.question, ask.k, ask.filters(), ask.turns())
    except Exception as exc:
        # The status line is sent: OpenAI's in-stream error object is the only way left to
        # tell the client (the openai SDK raises it as an APIError).
        status, message = stream_failure(http, exc)
        error = OpenAIError(status, message, type=error_type(status))
        yield {"data": json.dumps(error.body())}
        return
    metrics.observe_answer(answer, "chat")
    for piece in _PIECES.findall(answer_text(answer)):
        yield chunk(Delta(content=piece))
    yield chunk(Delta(), answer)
    if include_usage:
        yield event(ChatCompletionChunk(id=cid, created=created, choices=[],
                                        usage=Usage.of(answer)))  # fmt: skip
    yield {"data": "[DONE]"}

"""OpenAI's chat-completions wire format, as far as cardrag speaks it.

Only what chat front ends (Open WebUI, LibreChat, LobeChat, the openai SDK, LlamaIndex's
OpenAILike) send and read is modelled. Requests accept unknown fields, because every client
adds its own (user, seed, metadata, stream_options, reasoning_effort...) and OpenAI's API
accepts them too; parameters that would change the meaning of the answer and that cardrag
cannot honour (n > 1, tools, JSON output, logprobs) are refused by `unsupported_parameter`.
Responses carry two extra fields standard clients ignore: `citations` and `cardrag`.
Booleans and numbers are read strictly, as in the API's own bodies (api.schemas.STRICT_BODY):
`"stream": "yes"` is a 400, not a stream; message texts follow the API's control-character
rule for text of several lines.
"""

import time
import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, Strict, StrictBool, StrictInt, field_validator

from api.schemas import CardFilterParams, CitationOut, TopK, Usage, answer_flags, plain_lines
from rag.answer import Answer

MODEL_ID = "cardrag"
# /v1/models reports a creation time; a fixed one keeps the listing stable across restarts.
MODEL_CREATED = 1_767_225_600  # 2026-01-01


class ContentPart(BaseModel):
    """One part of a multi-part message: only text parts mean anything to cardrag."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(max_length=40)
    text: str | None = None

    @field_validator("text")
    @classmethod
    def _plain(cls, text: str | None) -> str | None:
        return text if text is None else plain_lines(text)


class ChatMessageIn(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None

    @field_validator("content")
    @classmethod
    def _plain(cls, content: str | list[ContentPart] | None) -> str | list[ContentPart] | None:
        return plain_lines(content) if isinstance(content, str) else content

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(part.text or "" for part in self.content if part.type == "text")
        return self.content or ""

    def has_non_text_parts(self) -> bool:
        return isinstance(self.content, list) and any(p.type != "text" for p in self.content)


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")

    include_usage: StrictBool | None = Field(
        None, description="Send a last chunk with `usage` and no choices before [DONE]."
    )


class CardragOptions(CardFilterParams):
    """cardrag's own request options (`extra_body={"cardrag": {...}}` in the openai SDK)."""

    k: Annotated[TopK, Strict()] | None = None


class ChatCompletionRequest(BaseModel):
    # The example fills Swagger's "Try it out" (/docs) with a request that works.
    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [
        {"model": MODEL_ID, "messages": [{"role": "user", "content": "What does dropout do?"}]}]})

    model: str = Field(min_length=1, max_length=200, description=f'"{MODEL_ID}".')
    messages: list[ChatMessageIn] = Field(
        min_length=1,
        max_length=1000,
        description="The last message is the question (role user); earlier user and "
        "assistant turns are the history. System messages are ignored: cardrag's "
        "instructions are its own.",
    )
    stream: StrictBool | None = None  # null, as OpenAI's spec allows: not streamed
    stream_options: StreamOptions | None = None  # read only when streamed, ignored otherwise
    n: StrictInt | None = None
    tools: list[Any] | None = None
    functions: list[Any] | None = None
    tool_choice: Any = None
    response_format: dict[str, Any] | None = None
    logprobs: StrictBool | None = None
    cardrag: CardragOptions = Field(
        default_factory=CardragOptions,
        description="cardrag's extension: retrieval filters (topic, difficulty, deck) and k.",
    )


def unsupported_parameter(request: ChatCompletionRequest) -> tuple[str, str] | None:
    """(param, message) for the first parameter cardrag cannot honour, else None. These are
    refused rather than ignored because ignoring them would hand back something the client
    did not ask for (one choice instead of n, prose instead of JSON or a tool call)."""
    if request.n not in (None, 1):
        return "n", "cardrag returns one answer per request: n must be 1."
    if request.tools or request.functions:
        return "tools", "cardrag does not call tools or functions."
    if request.tool_choice not in (None, "none", "auto"):
        return "tool_choice", "cardrag does not call tools or functions."
    if request.response_format and request.response_format.get("type") != "text":
        return "response_format", "cardrag answers in prose with [n] markers, not JSON."
    if request.logprobs:
        return "logprobs", "cardrag does not return log probabilities."
    return None


class ModelCard(BaseModel):
    id: str = MODEL_ID
    object: Literal["model"] = "model"
    created: int = MODEL_CREATED
    owned_by: str = "cardrag"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: Literal["stop"] = "stop"
    logprobs: None = None


class CardragExtras(BaseModel):
    """What /v1/ask says about an answer beyond its text and citations."""

    refused: bool = Field(description="The cards do not cover the question.")
    grounded: bool
    degraded: bool = Field(description="The LLM failed: the content lists the cards.")
    notice: str | None = None
    standalone_question: str | None = None
    cards: list[str] = Field(description="Ids of the cards shown to the LLM, in [n] order.")

    @classmethod
    def from_answer(cls, answer: Answer) -> "CardragExtras":
        return cls(**answer_flags(answer), cards=[hit.card.id for hit in answer.cards])


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str = MODEL_ID
    choices: list[Choice]
    citations: list[CitationOut] = Field(
        description="cardrag: the cards behind the [n] markers in the content."
    )
    cardrag: CardragExtras
    usage: Usage | None = Field(description="null when a call's counts are not known "
                                "(api.schemas.Usage).")


class Delta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None


class ChunkChoice(BaseModel):
    index: int = 0
    delta: Delta
    finish_reason: Literal["stop"] | None = None
    logprobs: None = None


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str = MODEL_ID
    choices: list[ChunkChoice]
    citations: list[CitationOut] | None = None  # only on the last chunk
    cardrag: CardragExtras | None = None  # only on the last chunk
    usage: Usage | None = None  # only on the usage chunk (stream_options.include_usage)


class OpenAIErrorBody(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class OpenAIErrorResponse(BaseModel):
    error: OpenAIErrorBody


def completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


def now() -> int:
    return int(time.time())

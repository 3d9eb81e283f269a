"""Request and response models: the HTTP contract, with its limits."""

import re
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
)

from rag.answer import Answer
from rag.cards import SLUG_PATTERN, Difficulty
from rag.export import ExportFormat
from rag.hits import FILTER_VALUE_MAX_CHARS, CardFilters, ScoredCard
from rag.limits import MAX_LEARNER_ANSWER_CHARS, MAX_QUESTION_CHARS
from rag.llm import Message

# Conversation limits, shared with the chat API (which trims to them instead of refusing).
MAX_HISTORY_TURNS = 20
MAX_TURN_CHARS = 4000

# C0 and C1 control characters and DEL: they have no place in a question and only serve to
# confuse terminals, logs and prompts. The schema states the rule; the validator also turns
# away lone surrogates, which JSON can carry but no encoder can encode. Text of several lines
# (earlier turns, a learner's answer, chat messages) follows the same rule but for line
# breaks and tabs, which an answer or a pasted paragraph legitimately holds.
NO_CONTROL_CHARACTERS = r"^[^\x00-\x1f\x7f-\x9f]*$"
NO_CONTROL_CHARACTERS_BUT_LINES = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$"
_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_FORBIDDEN_IN_LINES = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


_LINE_BREAKS = re.compile(r"[\t\n\r]+")


def one_line(value: object) -> object:
    """A question pasted as several lines (or sent so by a chat UI: Open WebUI's title and
    follow-up prompts are) reads as one: line breaks and tabs become spaces before the
    length and control-character checks. Anything else is left for them to judge."""
    return _LINE_BREAKS.sub(" ", value) if isinstance(value, str) else value


def plain_text(value: str) -> str:
    if _FORBIDDEN.search(value):
        raise ValueError("must not contain control characters")
    return value


def plain_lines(value: str) -> str:
    if _FORBIDDEN_IN_LINES.search(value):
        raise ValueError("must not contain control characters (line breaks and tabs are fine)")
    return value


# Constraints first, as for Question: whitespace is stripped and lengths measured before
# the characters are checked.
TurnText = Annotated[
    str,
    StringConstraints(max_length=MAX_TURN_CHARS),
    AfterValidator(plain_lines),
    Field(json_schema_extra={"pattern": NO_CONTROL_CHARACTERS_BUT_LINES}),
]
LearnerAnswer = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_LEARNER_ANSWER_CHARS),
    AfterValidator(plain_lines),
    Field(
        description="The learner's answer, 1 to 2,000 characters, no control characters but "
        "line breaks and tabs.",
        json_schema_extra={"pattern": NO_CONTROL_CHARACTERS_BUT_LINES},
    ),
]


Question = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_QUESTION_CHARS),
    AfterValidator(plain_text),
    BeforeValidator(one_line),  # last listed, so it runs first
    Field(
        description="A free-text question: 1 to 1,000 characters once surrounding whitespace "
        "is stripped; line breaks and tabs read as spaces, no other control characters.",
        json_schema_extra={"pattern": NO_CONTROL_CHARACTERS_BUT_LINES},
    ),
]
TopK = Annotated[int, Field(ge=1, le=20, description="How many cards to retrieve (1-20).")]
# JSON bodies are parsed strictly (`model_config = STRICT_BODY`): a body carries real
# booleans and numbers, and lax parsing read "k": true as 1 and "stream": "yes" as on.
# Query strings carry only text, so the models that read them stay lax ("?k=5").
STRICT_BODY = ConfigDict(extra="forbid", strict=True)
FilterValue = Annotated[
    str, StringConstraints(pattern=SLUG_PATTERN, max_length=FILTER_VALUE_MAX_CHARS)
]
FilterValues = Annotated[
    list[FilterValue],
    Field(max_length=20, description="Allowed values (OR-ed); an unknown one matches nothing."),
]
Difficulties = Annotated[list[Difficulty], Field(max_length=3)]


class CardOut(BaseModel):
    card_id: str
    question: str
    short_answer: str
    long_answer: str
    topic: str
    difficulty: Difficulty
    deck: str
    tags: list[str]


class SearchResult(CardOut):
    score: float = Field(description="Cosine similarity of the question and the card.")

    @classmethod
    def from_hit(cls, hit: ScoredCard) -> "SearchResult":
        return cls(**card_fields(hit.card), score=round(hit.score, 4))


class SearchResponse(BaseModel):
    results: list[SearchResult]
    corrected_query: str | None = Field(
        None,
        description="The query as search read it, when spelling correction changed it "
        '("droput" -> "dropout"); null when it was read as given.',
    )


class CardFilterParams(BaseModel):
    """Filters shared by search, answers and the study look-ups (in a query string they
    repeat: ?topic=a&topic=b). Unknown fields are rejected, in a body and a query alike."""

    model_config = ConfigDict(extra="forbid")

    topic: FilterValues = []
    difficulty: Difficulties = []
    deck: FilterValues = []

    def filters(self) -> CardFilters:
        return CardFilters(topic=self.topic, difficulty=self.difficulty, deck=self.deck)


class CardQuery(CardFilterParams):
    """Filters and how many cards to retrieve."""

    k: TopK | None = Field(
        None, description="How many cards to retrieve (1-20); default: retrieval.top_k (5)."
    )

    def top_k(self, default: int) -> int:
        """k as asked, or the server's configured retrieval.top_k."""
        return self.k or default


class SearchParams(CardQuery):
    """The query string of GET /v1/search."""

    q: Annotated[Question, Field(examples=["why do transformers use layernorm"])]
    min_score: float | None = Field(
        None, ge=-1.0, le=1.0, allow_inf_nan=False,
        description="Cosine floor; default: the calibrated one.",
    )


class Turn(BaseModel):
    """One earlier turn of the conversation."""

    model_config = ConfigDict(extra="forbid")

    role: Literal["user", "assistant"]
    content: TurnText


class AskRequest(CardQuery):
    # The example fills Swagger's "Try it out" (/docs); without it the body is generated
    # from the question's pattern, an unusable string.
    model_config = ConfigDict(**STRICT_BODY, json_schema_extra={"examples": [
        {"question": "Why do transformers use LayerNorm rather than BatchNorm?", "k": 5}]})

    question: Question
    history: list[Turn] = Field(
        default=[],
        max_length=MAX_HISTORY_TURNS,
        description="Earlier turns, oldest first. With history, the question is rewritten "
        "into a standalone question before retrieval (returned as standalone_question).",
    )
    stream: bool = Field(
        False,
        description="Server-sent events: `token` events with text as it is generated, then "
        "one `answer` event with the full response (authoritative: grounding may move or drop "
        "markers after the tokens were sent).",
    )

    def turns(self) -> list[Message]:
        """The history without empty turns, as the chat API drops them: a degraded answer
        has an empty `answer` that a client may send back, and an empty history would
        otherwise cost a follow-up rewrite (an LLM call) for nothing."""
        return [{"role": turn.role, "content": turn.content}
                for turn in self.history if turn.content.strip()]  # fmt: skip


class CitationOut(BaseModel):
    n: int = Field(description="The marker [n] in the answer; cards[n-1] is the card.")
    card_id: str
    question: str
    snippet: str = Field(description="The part of the card that supports the citation.")


class Usage(BaseModel):
    """The tokens the answer's LLM calls read and wrote (the follow-up rewrite, the HyDE
    passage, the answer), as OpenAI's `usage` counts them: 0 for a refusal by the gate,
    which calls no LLM. Reported only when every call's counts are known (rag.llm.TokenUsage):
    null for a call still running at the deadline, a failed call, or a server that sends
    no counts, rather than a number too small that clients would add up."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int

    @classmethod
    def of(cls, answer: Answer) -> "Usage | None":
        counts = answer.usage
        if not counts.known:
            return None
        return cls(prompt_tokens=counts.prompt_tokens, completion_tokens=counts.completion_tokens,
                   total_tokens=counts.total_tokens)  # fmt: skip


class AskResponse(BaseModel):
    answer: str
    citations: list[CitationOut]
    refused: bool = Field(description="True when the cards do not cover the question.")
    grounded: bool = Field(
        description="True when every sentence of the answer is supported by a card it cites."
    )
    degraded: bool = Field(
        description="True when the LLM failed or timed out: no generated text, and the "
        "retrieved cards, each cited, stand in for the answer."
    )
    notice: str | None = Field(None, description="Why the answer is degraded.")
    standalone_question: str | None = Field(
        None, description="The follow-up rewritten to stand alone (only with history)."
    )
    cards: list[SearchResult] = Field(description="The cards shown to the LLM, in [n] order.")
    timings_ms: dict[str, float]
    usage: Usage | None = Field(
        description="Tokens of the answer's LLM calls; null when not known (see Usage)."
    )

    @classmethod
    def from_answer(cls, answer: Answer) -> "AskResponse":
        return cls(
            answer=answer.answer,
            citations=citations_of(answer),
            **answer_flags(answer),
            cards=[SearchResult.from_hit(hit) for hit in answer.cards],
            timings_ms=answer.timings,
            usage=Usage.of(answer),
        )


class ComponentStatus(BaseModel):
    name: str
    status: str


class HealthResponse(BaseModel):
    status: Literal["ok"]
    cards: int = Field(description="Cards in the index.")
    embedder: ComponentStatus
    llm: ComponentStatus


class ErrorResponse(BaseModel):
    detail: str


class ValidationProblem(BaseModel):
    loc: list[str | int] = Field(description='Where: ["body", "question"], ["query", "k"].')
    msg: str
    type: str


class ValidationErrorResponse(BaseModel):
    """A 422: FastAPI's list, as before, and the same problems in one line for people."""

    detail: list[ValidationProblem]
    message: str = Field(examples=["question: must not be empty"])


def citations_of(answer: Answer) -> list[CitationOut]:
    return [CitationOut(**vars(citation)) for citation in answer.citations]


def answer_flags(answer: Answer) -> dict[str, object]:
    """What an answer is besides its text and cards: shared by /v1/ask and the chat API."""
    return {
        "refused": answer.refused,
        "grounded": answer.grounded,
        "degraded": answer.degraded,
        "notice": answer.notice,
        "standalone_question": answer.standalone_question,
    }


def card_fields(card) -> dict:  # type: ignore[no-untyped-def]
    data = card.model_dump()
    data["card_id"] = data.pop("id")
    data["tags"] = list(card.tags)
    return data


class DeckOut(BaseModel):
    deck: str
    title: str
    cards: int
    source: Literal["corpus", "imported"]


class DecksResponse(BaseModel):
    decks: list[DeckOut]


class ImportResponse(BaseModel):
    deck: str
    title: str
    cards: int = Field(description="Cards in the deck after the import.")
    skipped: list[str] = Field(description="Questions left out (no answer), with their line.")
    added: int = Field(description="Cards added to the index by this sync.")
    updated: int
    removed: int
    unchanged: int


class RemoveDeckResponse(BaseModel):
    deck: str
    removed: int = Field(description="Cards removed from the index.")


# Lists of card ids (an export, the quiz's `seen`). Ids are slugs, ASCII, so the largest
# list has a known size in JSON; the body limit of the routes that take one is raised by
# that much (api.app), or the list would hit the general limit long before its own.
MAX_LISTED_CARDS = 5000
MAX_CARD_ID_CHARS = 120
_JSON_ITEM_OVERHEAD = 8  # quotes, a comma and some whitespace around each id
CARD_IDS_JSON_BYTES = MAX_LISTED_CARDS * (MAX_CARD_ID_CHARS + _JSON_ITEM_OVERHEAD)
CardIds = Annotated[
    list[Annotated[str, StringConstraints(pattern=SLUG_PATTERN, max_length=MAX_CARD_ID_CHARS)]],
    Field(max_length=MAX_LISTED_CARDS),
]


class ExportRequest(BaseModel):
    model_config = ConfigDict(**STRICT_BODY, json_schema_extra={"examples": [
        {"card_ids": ["dropout", "batchnorm-vs-layernorm"], "format": "csv"}]})

    card_ids: CardIds = Field(
        min_length=1, description="Cards to export, e.g. the citations of an /v1/ask answer."
    )
    format: ExportFormat = "apkg"
    deck_name: Annotated[str, StringConstraints(min_length=1, max_length=120)] = "cardrag"


class QuizNextRequest(CardFilterParams):
    """The filters the next card must match, and the cards this session already asked."""

    model_config = STRICT_BODY

    seen: CardIds = Field([], description="Card ids already asked in this session.")
    seed: int | None = Field(None, description="Makes the pick reproducible.")


class QuizQuestion(BaseModel):
    card_id: str
    question: str
    topic: str
    difficulty: Difficulty
    deck: str


class QuizNextResponse(BaseModel):
    card: QuizQuestion | None = Field(
        description="The next question; null when every matching card has been seen."
    )
    remaining: int = Field(description="Matching cards not yet seen after this one.")


class QuizGradeRequest(BaseModel):
    model_config = ConfigDict(**STRICT_BODY, json_schema_extra={"examples": [
        {"card_id": "dropout", "answer": "It switches off random units while training."}]})

    card_id: Annotated[str, StringConstraints(pattern=SLUG_PATTERN, max_length=MAX_CARD_ID_CHARS)]
    answer: LearnerAnswer


class QuizGradeResponse(BaseModel):
    card_id: str
    score: float | None = Field(description="0 to 1; null when the grade is degraded.")
    right: list[str] = Field(description="What the answer got right.")
    missing: list[str] = Field(description="What the answer missed or got wrong.")
    degraded: bool = Field(description="True when the LLM could not grade: compare yourself.")
    note: str
    citation: CitationOut = Field(description="The card the grade is based on.")
    reference: CardOut = Field(description="The card, with its short and long answers.")


class CardListParams(CardFilterParams):
    limit: int = Field(20, ge=1, le=100, description="Cards per page (1-100).")
    offset: int = Field(0, ge=0, le=1_000_000, description="Cards to skip.")


class RelatedParams(CardQuery):
    """The query string of GET /v1/cards/{card_id}/related."""


class CardPageOut(BaseModel):
    cards: list[CardOut]
    total: int = Field(description="Cards matching the filters, across all pages.")
    offset: int
    limit: int


class FacetValue(BaseModel):
    value: str
    count: int = Field(description="Cards with this value.")


class FacetsOut(BaseModel):
    topic: list[FacetValue]
    difficulty: list[FacetValue]
    deck: list[FacetValue]


class RelatedResponse(BaseModel):
    card_id: str = Field(description="The card the others are related to.")
    related: list[SearchResult] = Field(
        description="Nearest cards by embedding, best first, the card itself excluded; "
        "score is the cosine of the two cards."
    )

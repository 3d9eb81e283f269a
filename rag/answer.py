"""Answer synthesis: retrieve, decide whether the cards cover the question, generate, cite.

The "not covered" decision is made here, in code, before the LLM is called: small models
answer out-of-corpus questions from their own weights and invent citations (measured with
both bundled Qwen sizes), so the LLM only ever sees questions the cards score well on.
"""

import copy
import dataclasses
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from rag.citations import StreamingMarkers, citation_grammar, validate_markers
from rag.deadline import Deadline, generate_within
from rag.errors import LLMUnavailable
from rag.expansion import HypotheticalAnswer
from rag.grounding import Grounder, supporting_snippet
from rag.guard import SentenceFlagger, without_injected_sentences
from rag.hits import CardFilters, ScoredCard, VectorRetriever
from rag.llm import Generator, Message, TokenUsage
from rag.prompts import (
    NOT_COVERED,
    NOTHING_INDEXED,
    SYSTEM_PROMPT,
    build_condense_messages,
    build_messages,
)
from rag.settings import LLMSettings, RetrievalSettings

# The model's own "not covered" reply, in the words the prompt asks for or close to them.
_MODEL_REFUSAL = re.compile(r"\b(cards|context) (do|does) not (cover|answer|contain)", re.I)
_LETTER = re.compile(r"[^\W\d_]")
DEGRADED_NOTICE = (
    "The language model is unavailable right now, so there is no generated answer: "
    "these are the cards that match the question."
)
# A standalone question is a line of text; more than this is the model rambling.
_MAX_REWRITE_CHARS = 400
# The HyDE passage may use at most this share of the answer's LLM deadline: a passage that
# takes longer is abandoned (the answer keeps the question's own cards) rather than leave
# the answer itself too little time. Measured: a passage takes ~8 s with the 1.5B model on
# 2 cores, a third of the default 30 s deadline is 10 s.
_EXPANSION_SHARE = 1 / 3


@dataclass(frozen=True)
class Citation:
    n: int
    card_id: str
    question: str
    snippet: str = ""  # the part of the card that supports the citing sentences


@dataclass
class Answer:
    answer: str
    refused: bool
    grounded: bool = False
    degraded: bool = False  # the LLM failed: no generated text, the cards are the answer
    citations: list[Citation] = field(default_factory=list)
    cards: list[ScoredCard] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    standalone_question: str | None = None  # the rewrite of a follow-up, when there was one
    notice: str | None = None  # why the answer is degraded, for the reader
    # The best cosine of the question's own hits: what the gate compared (with HyDE, the
    # cards' scores are cosines to the expanded vector instead).
    best_score: float = -1.0
    # The model's text before grounding. Not part of any API response: the answer eval
    # records it, so a grounding change can be replayed on saved answers (evals/answers.py).
    draft: str | None = None
    # Tokens of every LLM call made for this answer (none for a refusal by the gate).
    usage: TokenUsage = field(default_factory=TokenUsage)


class Answerer:
    def __init__(
        self,
        retriever: VectorRetriever,
        llm: Generator,
        grounder: Grounder,
        retrieval: RetrievalSettings,
        llm_settings: LLMSettings,
        expander: HypotheticalAnswer | None = None,
        flagger: SentenceFlagger | None = None,
        card_count: Callable[[], int] | None = None,
    ):
        self.retriever = retriever
        self.grounder = grounder
        self.llm = llm
        self.retrieval = retrieval
        self.llm_settings = llm_settings
        self.expander = expander  # HyDE (settings.retrieval.expansion); None: the question alone
        self.flagger = flagger  # sentences to redact beyond the patterns (build_flagger)
        self.card_count = card_count  # cards in the live index; asked only when none were found

    def refusal(self, hits: Sequence[ScoredCard]) -> str:
        """Why nothing is answered: the cards do not cover the question, or, when nothing at
        all was found because no card is indexed, that (the index is counted only then)."""
        if not hits and self.card_count is not None and self.card_count() == 0:
            return NOTHING_INDEXED
        return NOT_COVERED

    def replaced(
        self,
        *,
        retrieval: RetrievalSettings | None = None,
        expander: HypotheticalAnswer | None = None,
    ) -> "Answerer":
        """This answerer with other retrieval settings or another HyDE expander, everything
        else shared (the evals' variants). A copy rather than a second constructor call, so
        a part added later (as the flagger once was) cannot be silently left out."""
        twin = copy.copy(self)
        twin.retrieval = retrieval or self.retrieval
        twin.expander = expander or self.expander
        return twin

    def ask(
        self,
        question: str,
        k: int | None = None,
        filters: CardFilters | None = None,
        history: Sequence[Message] = (),
    ) -> Answer:
        """The whole answer at once: the last event of `stream`."""
        for event in self.stream(question, k, filters, history):
            if isinstance(event, Answer):
                return event
        raise AssertionError("stream() always ends with an Answer")

    def stream(
        self,
        question: str,
        k: int | None = None,
        filters: CardFilters | None = None,
        history: Sequence[Message] = (),
    ) -> Iterator[str | Answer]:
        """Text pieces as the LLM writes them (markers already validated), then the Answer.

        The final Answer is authoritative: grounding may move a marker to the card that
        supports the sentence, or drop an unsupported one, after the pieces were sent.
        One deadline (llm.timeout) covers every LLM call of the answer, so an LLM fault
        turns into a degraded answer within the timeout, never an error.
        """
        clock = _Clock()
        deadline = Deadline(self.llm_settings.timeout)
        usage = TokenUsage()
        standalone = None
        if history:
            standalone = self.standalone_question(question, history, deadline, usage)
            clock.lap("rewrite")
        query, k = standalone or question, k or self.retrieval.top_k
        searched = self.retriever.read_and_search(query, k, filters)
        hits = searched.hits
        clock.lap("retrieve")
        gate = best_score(hits)
        if gate < self.retrieval.answer_threshold:
            yield Answer(answer=self.refusal(hits), refused=True, standalone_question=standalone,
                         timings=clock.timings(), best_score=gate, usage=usage)  # fmt: skip
            return
        if self.expander is not None:
            # After the gate: a question the cards do not cover is refused as fast as before,
            # and the gate keeps the calibration of the question's own scores.
            hits = self.expanded_search(searched.read, k, filters, deadline, usage) or hits
            clock.lap("expand")
        context = self.within_margin(hits)
        messages = build_messages(query, [hit.card for hit in context], self.flagger)
        markers = StreamingMarkers(len(context))
        pieces: list[str] = []
        grammar = None
        if self.llm_settings.citation_grammar:
            grammar = citation_grammar(len(context), NOT_COVERED)
        try:
            for piece in self._generate(messages, deadline, grammar=grammar, usage=usage):
                pieces.append(piece)
                if text := markers.feed(piece):
                    yield text
            if text := markers.flush():
                yield text
            raw = "".join(pieces)
            if not looks_like_text(raw):
                raise LLMUnavailable("the LLM returned no usable text")
        except LLMUnavailable as exc:
            clock.lap("generate")
            answer = self.degraded(context, reason=str(exc))
        else:
            clock.lap("generate")
            answer = self.finish(raw, context, query)
            answer.draft = raw
        answer.standalone_question = standalone
        answer.timings = clock.timings()
        answer.best_score = gate
        # A copy: a call abandoned at the deadline may still report its counts later.
        answer.usage = dataclasses.replace(usage)
        yield answer

    def expanded_search(
        self,
        query: str,
        k: int,
        filters: CardFilters | None,
        deadline: Deadline,
        usage: TokenUsage | None = None,
    ) -> list[ScoredCard] | None:
        """The hits for the question's HyDE vector (rag.expansion). None when the LLM writes
        no usable passage: the answer then keeps the question's own hits, and its generation
        meets the same fault and degrades. `query` is the question as retrieval read it
        (spelling-corrected), so the passage and the vector's question half see it so too."""
        if self.expander is None:
            return None
        try:
            passage = "".join(self._generate(self.expander.messages(query),
                                             deadline.part(_EXPANSION_SHARE),
                                             max_tokens=self.expander.max_tokens,
                                             temperature=0.0, usage=usage))  # fmt: skip
        except LLMUnavailable:
            return None
        if not looks_like_text(passage):
            return None
        embedding = self.expander.embedding(query, passage)
        return self.retriever.search(query, k, filters, embedding=embedding) or None

    def standalone_question(
        self,
        question: str,
        history: Sequence[Message],
        deadline: Deadline,
        usage: TokenUsage | None = None,
    ) -> str:
        """Rewrite a follow-up into a question that stands alone (LlamaIndex's condense
        pattern). If the LLM cannot, the last user turn and the follow-up together still
        give retrieval the context the follow-up lacks."""
        try:
            rewrite = "".join(self._generate(build_condense_messages(question, history), deadline,
                                             max_tokens=96, temperature=0.0,
                                             usage=usage))  # fmt: skip
        except LLMUnavailable:
            rewrite = ""
        rewrite = rewrite.strip().splitlines()[0].strip().strip('"') if rewrite.strip() else ""
        if not looks_like_text(rewrite) or len(rewrite) > _MAX_REWRITE_CHARS:
            earlier = [t["content"] for t in history if t["role"] == "user"]
            return f"{earlier[-1]} {question}" if earlier else question
        return rewrite

    def within_margin(self, hits: list[ScoredCard]) -> list[ScoredCard]:
        """The hits within `context_margin` of the best: weak context invites off-topic
        citations."""
        best = best_score(hits)
        return [hit for hit in hits if hit.score >= best - self.retrieval.context_margin]

    def finish(self, raw: str, context: list[ScoredCard], question: str | None = None) -> Answer:
        """Normalise markers, drop those pointing at no card, then ground every sentence
        (and, given the question the model answered, drop sentences that bear on neither it
        nor their card)."""
        text = validate_markers(raw, len(context)).text
        text = without_injected_sentences(text, SYSTEM_PROMPT)
        if _MODEL_REFUSAL.search(text):
            return Answer(answer=NOT_COVERED, refused=True, cards=context)
        grounded = self.grounder.ground(text, [hit.card for hit in context], question)
        if not grounded.cited:
            # Not one sentence is supported by a card: the model answered from its own
            # weights (or said nothing useful), which for a study tool is "not covered".
            return Answer(answer=NOT_COVERED, refused=True, cards=context)
        citations = []
        for n in sorted(grounded.cited):
            hit = context[n - 1]
            citations.append(_citation(n, hit, supporting_snippet(hit.card, grounded.citing[n])))
        return Answer(answer=grounded.text, refused=False, grounded=grounded.grounded,
                      citations=citations, cards=context)  # fmt: skip

    def degraded(self, context: list[ScoredCard], reason: str) -> Answer:
        """No generated text: the retrieved cards, each cited, are the answer."""
        citations = [_citation(n, hit, hit.card.short_answer) for n, hit in enumerate(context, 1)]
        return Answer(answer="", refused=False, degraded=True, citations=citations,
                      cards=context, notice=f"{DEGRADED_NOTICE} ({reason})")  # fmt: skip

    def _generate(
        self,
        messages: list[Message],
        deadline: Deadline,
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
        grammar: str | None = None,
        usage: TokenUsage | None = None,
    ) -> Iterator[str]:
        return generate_within(
            self.llm, messages, deadline,
            max_tokens=max_tokens or self.llm_settings.max_tokens,
            temperature=self.llm_settings.temperature if temperature is None else temperature,
            grammar=grammar, usage=usage,
        )  # fmt: skip


def looks_like_text(text: str) -> bool:
    """False for empty output and for garbage (mostly symbols, replacement characters):
    such output is treated as an LLM fault, not as an answer."""
    stripped = text.strip()
    if not stripped or stripped.count("\ufffd") > 2:
        return False
    letters = len(_LETTER.findall(stripped))
    return letters >= 2 and letters / len(stripped) >= 0.5


def best_score(hits: list[ScoredCard]) -> float:
    """The best cosine among the hits (a fused ranking need not put it first)."""
    return max((hit.score for hit in hits), default=-1.0)


def _citation(n: int, hit: ScoredCard, snippet: str) -> Citation:
    return Citation(n=n, card_id=hit.card.id, question=hit.card.question, snippet=snippet)


class _Clock:
    """Milliseconds spent in each step of an answer."""

    def __init__(self) -> None:
        self._last = time.perf_counter()
        self._laps: dict[str, float] = {}

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self._laps[f"{name}_ms"] = round((now - self._last) * 1000, 1)
        self._last = now

    def timings(self) -> dict[str, float]:
        return dict(self._laps)

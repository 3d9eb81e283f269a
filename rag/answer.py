"""Answer synthesis: retrieve, decide whether the cards cover the question, generate, cite.

The "not covered" decision is made here, in code, before the LLM is called: small models
answer out-of-corpus questions from their own weights and invent citations (measured with
both bundled Qwen sizes), so the LLM only ever sees questions the cards score well on.
"""

import re
import time
from dataclasses import dataclass, field

from rag.citations import validate_markers
from rag.errors import LLMUnavailable
from rag.grounding import Grounder
from rag.hits import CardFilters, Retriever, ScoredCard
from rag.llm import Generator
from rag.prompts import NOT_COVERED, build_messages
from rag.settings import LLMSettings, RetrievalSettings

# The model's own "not covered" reply, in the words the prompt asks for or close to them.
_MODEL_REFUSAL = re.compile(r"\b(cards|context) (do|does) not (cover|answer|contain)", re.I)


@dataclass(frozen=True)
class Citation:
    n: int
    card_id: str
    question: str


@dataclass
class Answer:
    answer: str
    refused: bool
    grounded: bool = False
    citations: list[Citation] = field(default_factory=list)
    cards: list[ScoredCard] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


class Answerer:
    def __init__(
        self,
        retriever: Retriever,
        llm: Generator,
        grounder: Grounder,
        retrieval: RetrievalSettings,
        llm_settings: LLMSettings,
    ):
        self.retriever = retriever
        self.grounder = grounder
        self.llm = llm
        self.retrieval = retrieval
        self.llm_settings = llm_settings

    def ask(
        self, question: str, k: int | None = None, filters: CardFilters | None = None
    ) -> Answer:
        started = time.perf_counter()
        hits = self.retriever.search(question, k or self.retrieval.top_k, filters)
        retrieved = time.perf_counter()
        context = self.context_cards(hits)
        if not context:
            return Answer(answer=NOT_COVERED, refused=True,
                          timings=_ms(retrieve=retrieved - started))  # fmt: skip
        raw = self.llm.generate(
            build_messages(question, [hit.card for hit in context]),
            max_tokens=self.llm_settings.max_tokens,
            temperature=self.llm_settings.temperature,
        )
        if not raw.strip():
            raise LLMUnavailable("the LLM returned an empty answer")
        answer = self.finish(raw, context)
        answer.timings = _ms(retrieve=retrieved - started, generate=time.perf_counter() - retrieved)
        return answer

    def context_cards(self, hits: list[ScoredCard]) -> list[ScoredCard]:
        """The cards shown to the LLM, in retrieval order: none if the best cosine is below
        the calibrated threshold, else those within `context_margin` of the best."""
        best = best_score(hits)
        if best < self.retrieval.answer_threshold:
            return []
        floor = max(self.retrieval.answer_threshold, best - self.retrieval.context_margin)
        return [hit for hit in hits if hit.score >= floor]

    def finish(self, raw: str, context: list[ScoredCard]) -> Answer:
        """Normalise markers, drop those pointing at no card, then ground every sentence."""
        text = validate_markers(raw, len(context)).text
        if _MODEL_REFUSAL.search(text):
            return Answer(answer=NOT_COVERED, refused=True, cards=context)
        grounded = self.grounder.ground(text, [hit.card for hit in context])
        if not grounded.cited:
            # Not one sentence is supported by a card: the model answered from its own
            # weights (or said nothing useful), which for a study tool is "not covered".
            return Answer(answer=NOT_COVERED, refused=True, cards=context)
        citations = [
            Citation(n=n, card_id=context[n - 1].card.id, question=context[n - 1].card.question)
            for n in sorted(grounded.cited)
        ]
        return Answer(answer=grounded.text, refused=False, grounded=grounded.grounded,
                      citations=citations, cards=context)  # fmt: skip


def best_score(hits: list[ScoredCard]) -> float:
    """The best cosine among the hits (a fused ranking need not put it first)."""
    return max((hit.score for hit in hits), default=-1.0)


def _ms(**seconds: float) -> dict[str, float]:
    return {f"{name}_ms": round(value * 1000, 1) for name, value in seconds.items()}

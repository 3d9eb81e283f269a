"""Answer eval with the real LLM: refusals, citations against gold cards, grounding, latency,
and the "not covered" threshold calibrated on whole answers.

In-corpus questions come from the retrieval set (gold = its relevant cards); out-of-corpus
questions from out_of_corpus.jsonl. Every answer is produced by the full Answerer, so the
retrieval gate, generation, grounding and the post-generation "no supported sentence"
check are measured together.

Calibration: the run uses a low gate (`gate_floor`), so the LLM answers nearly everything,
and records each question's best retrieval score. Because the gate only decides whether the
LLM is asked (rag.answer.Answerer.stream), the outcome at any higher threshold t is
known from the same run: refused if best < t, else what the run produced. The threshold is
chosen on the dev rows (in-corpus dev split, out-of-corpus dev split) and reported on the
held-out rows, which are never tuned on.
"""

import json
import statistics
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields, replace

from evals.calibrate import MAX_FALSE_REFUSAL, load_out_of_corpus
from evals.retrieval import load_queries
from rag.answer import Answer, Answerer
from rag.cards import Card
from rag.citations import markers_in, strip_markers
from rag.errors import CardragError
from rag.grounding import content_words
from rag.hits import ScoredCard


@dataclass(frozen=True)
class AnswerRow:
    question: str
    in_corpus: bool
    split: str  # dev | heldout
    gold: frozenset[str]
    best_score: float
    refused: bool
    degraded: bool
    invalid_markers: int  # markers in the returned answer that point at no shown card
    llm_called: bool
    grounded: bool
    cited: tuple[str, ...]
    answer: str
    seconds: float
    # For replaying grounding offline: the model's text before grounding (None when the LLM
    # was not asked or failed) and the ids of the cards it was shown, in prompt order.
    draft: str | None = None
    context: tuple[str, ...] = ()
    context_scores: tuple[float, ...] = ()  # each shown card's retrieval score, same order

    def at_threshold(self, threshold: float) -> "AnswerRow":
        """This row as the service would have answered it with that gate."""
        if self.best_score >= threshold or self.refused:
            return self
        return replace(self, refused=True, llm_called=False, grounded=False, cited=(),
                       degraded=False)  # fmt: skip

    def to_json(self) -> str:
        data = asdict(self)
        data["gold"] = sorted(self.gold)
        return json.dumps(data)

    @classmethod
    def from_json(cls, line: str) -> "AnswerRow":
        """A row written by `to_json`; CardragError for anything else."""
        try:
            data = json.loads(line)
            data["gold"] = frozenset(data["gold"])
            data["cited"] = tuple(data["cited"])
            data["context"] = tuple(data.get("context") or ())
            data["context_scores"] = tuple(data.get("context_scores") or ())
            if data["context_scores"] and len(data["context_scores"]) != len(data["context"]):
                raise ValueError("a score for each shown card")
            return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})
        except (ValueError, TypeError, KeyError) as exc:
            raise CardragError("not a row written by `cardrag eval --answers --rows`") from exc


def out_of_corpus_split(question: str) -> str:
    """A stable split of the out-of-corpus set (a quarter held out), independent of row
    order, so edits to the file do not move questions between splits."""
    return "heldout" if zlib.crc32(question.encode()) % 4 == 0 else "dev"


def run_answer_eval(
    answerer: Answerer,
    split: str = "dev",
    limit: int | None = None,
    gate_floor: float | None = None,
) -> list[AnswerRow]:
    """Answer every question of the split (and the out-of-corpus questions of the same split),
    with the gate lowered to `gate_floor` when given."""
    if gate_floor is not None:
        retrieval = answerer.retrieval.model_copy(update={"answer_threshold": gate_floor})
        answerer = answerer.replaced(retrieval=retrieval)
    splits = ("dev", "heldout") if split == "all" else (split,)
    queries = [q for s in splits for q in load_queries(split=s)[:limit]]
    outside = [q for q in load_out_of_corpus() if out_of_corpus_split(q) in splits][:limit]
    cases = [(q.question, True, q.split, frozenset(q.relevant)) for q in queries]
    cases += [(q, False, out_of_corpus_split(q), frozenset()) for q in outside]
    return [_answer(answerer, *case) for case in cases]


def _answer(
    answerer: Answerer, question: str, in_corpus: bool, split: str, gold: frozenset[str]
) -> AnswerRow:
    started = time.perf_counter()
    answer = answerer.ask(question)
    return _row(question, in_corpus, split, gold, answer, time.perf_counter() - started)


def _row(question: str, in_corpus: bool, split: str, gold: frozenset[str], answer: Answer,
         seconds: float) -> AnswerRow:  # fmt: skip
    return AnswerRow(
        question=question, in_corpus=in_corpus, split=split, gold=gold,
        best_score=answer.best_score, refused=answer.refused, degraded=answer.degraded,
        invalid_markers=sum(not 1 <= n <= len(answer.cards) for n in markers_in(answer.answer)),
        llm_called="generate_ms" in answer.timings,
        grounded=answer.grounded, cited=tuple(c.card_id for c in answer.citations),
        answer=answer.answer, seconds=seconds,
        draft=answer.draft, context=tuple(hit.card.id for hit in answer.cards),
        context_scores=tuple(hit.score for hit in answer.cards),
    )  # fmt: skip


def replay_grounding(
    rows: Sequence[AnswerRow], answerer: Answerer, cards: Callable[[Sequence[str]], list[Card]]
) -> list[AnswerRow]:
    """The rows as the answerer's current checks (grounding, the model-refusal test) would
    have finished the same drafts: a grounding setting is chosen from one LLM run, without
    generating again. Exact, because everything after generation is deterministic; rows
    without a draft (gated, degraded, or from an older run) are kept as they were.
    `cards` returns the cards of these ids, in order (the index the run used)."""
    replayed = []
    for row in rows:
        if row.draft is None or not row.context or row.degraded:
            replayed.append(row)
            continue
        # Rows from runs before context_scores was recorded give every card the best score.
        scores = row.context_scores or (row.best_score,) * len(row.context)
        context = [ScoredCard(card, score)
                   for card, score in zip(cards(row.context), scores, strict=True)]  # fmt: skip
        answer = answerer.finish(row.draft, context, row.question)
        answer.best_score, answer.draft = row.best_score, row.draft
        answer.timings = {"generate_ms": 0.0}  # the LLM was called, in the recorded run
        replayed.append(_row(row.question, row.in_corpus, row.split, row.gold, answer,
                             row.seconds))  # fmt: skip
    return replayed


# An answer that adds fewer new content words than this to the question says nothing a
# learner can use ("To standardize features before a random forest, you need to use the
# card [1]."), though it is neither a refusal nor an invalid citation. Fixed at 3 before
# the rows were looked at.
MIN_NEW_CONTENT_WORDS = 3
_NOT_CONTENT = frozenset(content_words("card cards"))


def is_content_free(question: str, answer: str) -> bool:
    """True when the answer adds fewer than MIN_NEW_CONTENT_WORDS content words to the
    question's (markers and the word "card" aside)."""
    new = content_words(strip_markers(answer)) - content_words(question) - _NOT_CONTENT
    return len(new) < MIN_NEW_CONTENT_WORDS


def answer_metrics(rows: list[AnswerRow]) -> dict[str, float]:
    inside = [r for r in rows if r.in_corpus]
    outside = [r for r in rows if not r.in_corpus]
    answered = [r for r in inside if not r.refused and not r.degraded]
    cited = [c for r in answered for c in r.cited]
    latencies = [r.seconds for r in inside if r.llm_called]
    return {
        "in_corpus": len(inside),
        "out_of_corpus": len(outside),
        "refusal_rate_out_of_corpus": _share(r.refused for r in outside),
        "false_refusal_rate": _share(r.refused for r in inside),
        # Answered in-corpus questions whose answer says nothing beyond the question: the
        # false-refusal rate counts them as answered.
        "content_free_answers": sum(is_content_free(r.question, r.answer) for r in answered),
        "citation_precision": (
            sum(1 for r in answered for c in r.cited if c in r.gold) / len(cited) if cited else 0
        ),
        "citation_recall": _share(bool(set(r.cited) & r.gold) for r in answered),
        "grounded_rate": _share(r.grounded for r in answered),
        "degraded_rate": _share(r.degraded for r in rows),
        "invalid_markers": sum(r.invalid_markers for r in rows),
        "latency_p50_s": statistics.median(latencies) if latencies else 0.0,
        "latency_p95_s": _percentile(latencies, 95),
        "latency_max_s": max(latencies, default=0.0),
    }


@dataclass(frozen=True)
class ThresholdChoice:
    threshold: float
    dev: dict[str, float]  # answer_metrics of the dev rows at that threshold
    heldout: dict[str, float]


def calibrate_on_answers(rows: list[AnswerRow], floor: float) -> ThresholdChoice:
    """The highest gate (most out-of-corpus refusals) whose in-corpus dev false refusals,
    counting refusals after generation too, stay within MAX_FALSE_REFUSAL."""
    dev = [r for r in rows if r.split == "dev"]
    candidates = sorted({round(r.best_score, 4) for r in dev if r.best_score >= floor} | {floor})
    chosen = floor
    for threshold in candidates:
        at = [r.at_threshold(threshold) for r in dev if r.in_corpus]
        if _share(r.refused for r in at) <= MAX_FALSE_REFUSAL:
            chosen = threshold
    return ThresholdChoice(
        threshold=chosen,
        dev=answer_metrics([r.at_threshold(chosen) for r in dev]),
        heldout=answer_metrics([r.at_threshold(chosen) for r in rows if r.split == "heldout"]),
    )


def _percentile(values: list[float], percent: int) -> float:
    if len(values) < 2:
        return values[0] if values else 0.0
    return statistics.quantiles(values, n=100, method="inclusive")[percent - 1]


def _share(flags) -> float:  # type: ignore[no-untyped-def]
    values = list(flags)
    return sum(values) / len(values) if values else 0.0

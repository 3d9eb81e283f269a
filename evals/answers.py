"""Answer eval with the real LLM: refusals, citations against gold cards, grounding, latency.

In-corpus questions come from the retrieval set (gold = its relevant cards); out-of-corpus
questions from out_of_corpus.jsonl. Every answer is produced by the full Answerer, so
retrieval threshold, generation and grounding are measured together.
"""

import statistics
import time
from dataclasses import dataclass

from evals.calibrate import load_out_of_corpus
from evals.retrieval import load_queries
from rag.answer import Answerer
from rag.citations import markers_in


@dataclass(frozen=True)
class AnswerRow:
    question: str
    in_corpus: bool
    gold: frozenset[str]
    refused: bool
    degraded: bool
    invalid_markers: int  # markers in the returned answer that point at no shown card
    llm_called: bool
    grounded: bool
    cited: tuple[str, ...]
    answer: str
    seconds: float


def run_answer_eval(
    answerer: Answerer, split: str = "dev", limit: int | None = None
) -> list[AnswerRow]:
    queries = load_queries(split=split)[:limit]
    outside = load_out_of_corpus()[:limit]
    cases = [(q.question, True, frozenset(q.relevant)) for q in queries]
    cases += [(q, False, frozenset()) for q in outside]
    return [_answer(answerer, question, inside, gold) for question, inside, gold in cases]


def _answer(answerer: Answerer, question: str, in_corpus: bool, gold: frozenset[str]) -> AnswerRow:
    started = time.perf_counter()
    answer = answerer.ask(question)
    return AnswerRow(
        question=question, in_corpus=in_corpus, gold=gold, refused=answer.refused,
        degraded=answer.degraded,
        invalid_markers=sum(not 1 <= n <= len(answer.cards) for n in markers_in(answer.answer)),
        llm_called="generate_ms" in answer.timings,
        grounded=answer.grounded, cited=tuple(c.card_id for c in answer.citations),
        answer=answer.answer, seconds=time.perf_counter() - started,
    )  # fmt: skip


def answer_metrics(rows: list[AnswerRow]) -> dict[str, float]:
    inside = [r for r in rows if r.in_corpus]
    outside = [r for r in rows if not r.in_corpus]
    answered = [r for r in inside if not r.refused]
    cited = [c for r in answered for c in r.cited]
    latencies = [r.seconds for r in inside if r.llm_called]
    return {
        "in_corpus": len(inside),
        "out_of_corpus": len(outside),
        "refusal_rate_out_of_corpus": _share(r.refused for r in outside),
        "false_refusal_rate": _share(r.refused for r in inside),
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


def _percentile(values: list[float], percent: int) -> float:
    if len(values) < 2:
        return values[0] if values else 0.0
    return statistics.quantiles(values, n=100, method="inclusive")[percent - 1]


def _share(flags) -> float:  # type: ignore[no-untyped-def]
    values = list(flags)
    return sum(values) / len(values) if values else 0.0

"""Calibrating the "not covered" threshold on the best card's score.

In-corpus questions (the dev split only: the held-out split is never tuned on) should
clear the threshold; out-of-corpus questions should not. The recommended threshold is the
highest one that keeps false refusals on the dev split within MAX_FALSE_REFUSAL, which
refuses the most out-of-corpus questions for that budget.
"""

import json
from dataclasses import dataclass
from pathlib import Path

from evals.retrieval import DATA_DIR, load_queries
from rag.answer import best_score
from rag.hits import Retriever
from rag.settings import Settings

OUT_OF_CORPUS_SET = DATA_DIR / "out_of_corpus.jsonl"
MAX_FALSE_REFUSAL = 0.05


@dataclass(frozen=True)
class RateAt:
    threshold: float
    refusal: float  # out-of-corpus questions refused
    false_refusal_dev: float  # in-corpus dev questions refused
    false_refusal_heldout: float


@dataclass(frozen=True)
class Calibration:
    configured: RateAt
    recommended: RateAt
    out_of_corpus: int
    in_corpus_dev: int
    worst_out_of_corpus: list[tuple[float, str]]  # the highest-scoring ones: near-misses


def load_out_of_corpus(path: Path = OUT_OF_CORPUS_SET) -> list[str]:
    return [json.loads(line)["question"] for line in path.read_text().splitlines() if line]


def calibrate_threshold(retriever: Retriever, settings: Settings) -> Calibration:
    def best_scores(questions: list[str]) -> list[float]:
        k = settings.retrieval.top_k
        return [best_score(retriever.search(q, k)) for q in questions]

    dev = best_scores([q.question for q in load_queries(split="dev")])
    heldout = best_scores([q.question for q in load_queries(split="heldout")])
    ooc_questions = load_out_of_corpus()
    ooc = best_scores(ooc_questions)

    def rates(threshold: float) -> RateAt:
        return RateAt(
            threshold=round(threshold, 4),
            refusal=_below(ooc, threshold),
            false_refusal_dev=_below(dev, threshold),
            false_refusal_heldout=_below(heldout, threshold),
        )

    allowed = int(MAX_FALSE_REFUSAL * len(dev))
    recommended = sorted(dev)[allowed] - 1e-4  # refuse at most `allowed` dev questions
    worst = sorted(zip(ooc, ooc_questions, strict=True), reverse=True)[:5]
    return Calibration(
        configured=rates(settings.retrieval.answer_threshold),
        recommended=rates(recommended),
        out_of_corpus=len(ooc),
        in_corpus_dev=len(dev),
        worst_out_of_corpus=[(round(s, 4), q) for s, q in worst],
    )


def _below(scores: list[float], threshold: float) -> float:
    return sum(1 for s in scores if s < threshold) / len(scores) if scores else 0.0

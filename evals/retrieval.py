"""Retrieval metrics over a labelled question set.

Each query lists its relevant card ids with a grade (2 answers the question, 1 partly does).
hit@k and MRR count a hit on the first card of grade 2 or, for a question that has none, any
relevant card; nDCG@10 uses the grades; recall@10 is the share of relevant cards found.
"""

import json
import math
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from rag.cards import Card
from rag.hits import Retriever

DATA_DIR = Path(__file__).parent / "data"
RETRIEVAL_SET = DATA_DIR / "retrieval.jsonl"
SPLITS = ("dev", "heldout", "all")
DEPTH = 10


@dataclass(frozen=True)
class Query:
    id: str
    question: str
    relevant: dict[str, int]
    kind: str
    split: str

    def primary(self) -> set[str]:
        best = max(self.relevant.values())
        return {card for card, grade in self.relevant.items() if grade == best}


@dataclass
class QueryResult:
    query: Query
    ranked: list[str]
    scores: list[float]

    def rank(self) -> int | None:
        primary = self.query.primary()
        return next((i for i, cid in enumerate(self.ranked, 1) if cid in primary), None)


@dataclass
class RetrievalResult:
    results: list[QueryResult]
    by_topic: dict[str, list[QueryResult]] = field(default_factory=dict)

    def metrics(self, subset: list[QueryResult] | None = None) -> dict[str, float]:
        return metrics(self.results if subset is None else subset)


def topic_lookup(cards: Iterable[Card]) -> Callable[[str], str]:
    """card id -> topic, from one read of the catalogue (not a store look-up per query)."""
    topics = {card.id: card.topic for card in cards}
    return lambda card_id: topics.get(card_id, "(not in index)")


def load_queries(path: Path = RETRIEVAL_SET, split: str = "all") -> list[Query]:
    if split not in SPLITS:
        from rag.errors import CardragError

        raise CardragError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    lines = path.read_text(encoding="utf-8").splitlines()
    queries = [Query(**json.loads(line)) for line in lines if line.strip()]
    return [q for q in queries if split == "all" or q.split == split]


def run_retrieval_eval(
    retriever: Retriever,
    queries: list[Query],
    topic_of: Callable[[str], str],
    depth: int = DEPTH,
) -> RetrievalResult:
    """Retrieve for every query; `topic_of(card_id)` groups queries by their target's topic."""
    results = []
    by_topic: dict[str, list[QueryResult]] = defaultdict(list)
    for query in queries:
        hits = retriever.search(query.question, depth)
        result = QueryResult(query, [h.card.id for h in hits], [h.score for h in hits])
        results.append(result)
        for topic in sorted({topic_of(card_id) for card_id in query.primary()}):
            by_topic[topic].append(result)
    return RetrievalResult(results=results, by_topic=dict(sorted(by_topic.items())))


def metrics(results: list[QueryResult]) -> dict[str, float]:
    if not results:
        return {"queries": 0}
    n = len(results)
    ranks = [r.rank() for r in results]
    return {
        "queries": n,
        "hit@1": sum(1 for r in ranks if r == 1) / n,
        "hit@5": sum(1 for r in ranks if r is not None and r <= 5) / n,
        "recall@10": sum(_recall(r) for r in results) / n,
        "mrr": sum(1 / r for r in ranks if r is not None) / n,
        "ndcg@10": sum(_ndcg(r) for r in results) / n,
    }


def _recall(result: QueryResult) -> float:
    found = set(result.ranked[:DEPTH]) & set(result.query.relevant)
    return len(found) / len(result.query.relevant)


def _ndcg(result: QueryResult) -> float:
    grades = result.query.relevant
    dcg = sum(
        (2 ** grades.get(cid, 0) - 1) / math.log2(i + 1)
        for i, cid in enumerate(result.ranked[:DEPTH], 1)
    )
    ideal = sorted(grades.values(), reverse=True)[:DEPTH]
    idcg = sum((2**g - 1) / math.log2(i + 1) for i, g in enumerate(ideal, 1))
    return dcg / idcg if idcg else 0.0

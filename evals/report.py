"""Printing eval results: rich tables for people, one JSON object for machines."""

from dataclasses import asdict
from typing import Any

from rich.console import Console
from rich.table import Table

from evals.calibrate import Calibration
from evals.retrieval import QueryResult, RetrievalResult

COLUMNS = ("hit@1", "hit@5", "recall@10", "mrr", "ndcg@10")
OURS = "cardrag"


def report_json(
    results: dict[str, RetrievalResult], calibration: Calibration | None
) -> dict[str, Any]:
    ours = results[OURS]
    data: dict[str, Any] = {
        "queries": len(ours.results),
        "systems": {name: _rounded(r.metrics()) for name, r in results.items()},
        "by_split": {name: _by_split(r) for name, r in results.items()},
        "by_topic": {t: _rounded(ours.metrics(rs)) for t, rs in ours.by_topic.items()},
        "misses": [
            {"id": r.query.id, "question": r.query.question, "top": r.ranked[:3]}
            for r in ours.results
            if (r.rank() or 99) > 5
        ],
    }
    if calibration:
        data["calibration"] = asdict(calibration)
    return data


def print_report(
    console: Console, results: dict[str, RetrievalResult], calibration: Calibration | None
) -> None:
    table = Table("system", "split", "queries", *COLUMNS, title="cardrag retrieval eval")
    for name, result in results.items():
        _row(table, [name, "all"], result.metrics())
        for split, rows in _splits(result).items():
            _row(table, ["", split], result.metrics(rows))
    console.print(table)
    topics = Table("topic", "queries", *COLUMNS, title=f"{OURS} by topic")
    for topic, rows in results[OURS].by_topic.items():
        _row(topics, [topic], results[OURS].metrics(rows))
    console.print(topics)
    if calibration:
        _print_calibration(console, calibration)


def _print_calibration(console: Console, calibration: Calibration) -> None:
    table = Table("", "threshold", "out-of-corpus refused", "false refusals (dev)",
                  "false refusals (held-out)", title="'not covered' threshold")  # fmt: skip
    for name, rate in (("configured", calibration.configured),
                       ("recommended", calibration.recommended)):  # fmt: skip
        rates = (rate.threshold, rate.refusal, rate.false_refusal_dev, rate.false_refusal_heldout)
        table.add_row(name, *(f"{value:.3f}" for value in rates))
    console.print(table)
    console.print("highest-scoring out-of-corpus questions:")
    for score, question in calibration.worst_out_of_corpus:
        console.print(f"  {score:.3f}  {question}", highlight=False)


def _row(table: Table, names: list[str], m: dict[str, float]) -> None:
    table.add_row(*names, str(int(m["queries"])), *(f"{m[c]:.3f}" for c in COLUMNS))


def _splits(result: RetrievalResult) -> dict[str, list[QueryResult]]:
    groups: dict[str, list[QueryResult]] = {}
    for r in result.results:
        groups.setdefault(r.query.split, []).append(r)
    return dict(sorted(groups.items()))


def _by_split(result: RetrievalResult) -> dict[str, dict[str, float]]:
    return {name: _rounded(result.metrics(rows)) for name, rows in _splits(result).items()}


def _rounded(m: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 4) for k, v in m.items()}

"""Printing eval results: a rich table for people, one JSON object for machines."""

from dataclasses import asdict
from typing import Any

from rich.console import Console
from rich.table import Table

from evals.calibrate import Calibration
from evals.retrieval import RetrievalResult

COLUMNS = ("hit@1", "hit@5", "recall@10", "mrr", "ndcg@10")


def report_json(result: RetrievalResult, calibration: Calibration | None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "queries": len(result.results),
        "metrics": _rounded(result.metrics()),
        "by_topic": {t: _rounded(result.metrics(rs)) for t, rs in result.by_topic.items()},
        "by_split": _by(result, lambda r: r.query.split),
        "misses": [
            {"id": r.query.id, "question": r.query.question, "top": r.ranked[:3]}
            for r in result.results
            if (r.rank() or 99) > 5
        ],
    }
    if calibration:
        data["calibration"] = asdict(calibration)
    return data


def print_report(console: Console, result: RetrievalResult, calibration: Calibration | None):  # type: ignore[no-untyped-def]
    table = Table("", "queries", *COLUMNS, title="cardrag retrieval eval")
    _row(table, "all", result.metrics())
    for split, rows in _group(result, lambda r: r.query.split).items():
        _row(table, f"split: {split}", result.metrics(rows))
    for topic, rows in result.by_topic.items():
        _row(table, f"topic: {topic}", result.metrics(rows))
    console.print(table)
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


def _row(table: Table, name: str, m: dict[str, float]) -> None:
    table.add_row(name, str(int(m["queries"])), *(f"{m[c]:.3f}" for c in COLUMNS))


def _group(result: RetrievalResult, key):  # type: ignore[no-untyped-def]
    groups: dict[str, list] = {}
    for r in result.results:
        groups.setdefault(key(r), []).append(r)
    return dict(sorted(groups.items()))


def _by(result: RetrievalResult, key) -> dict[str, dict[str, float]]:  # type: ignore[no-untyped-def]
    return {name: _rounded(result.metrics(rows)) for name, rows in _group(result, key).items()}


def _rounded(m: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 4) for k, v in m.items()}

"""What the instruction probe (rag.probe) adds to building an answer's prompt, in
docs/BENCHMARKS.md.

For every retrieval-eval question (289) the cards an answer would show are retrieved once,
as the Answerer picks them (top k, within the context margin); then the prompt is built
without the probe, with a cold probe (nothing cached: every sentence embedded) and with
the shared warm probe a server keeps (a card seen before is not embedded again). Real
encoder, the shipped corpus, idle machine. Run: .venv/bin/python -m bench.probe_cost
"""

import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.report import load_average, percentile, write_section
from evals.retrieval import load_queries
from rag.cards import Card, all_cards, load_corpus
from rag.components import build_components
from rag.embedding import ENCODER_NAME
from rag.probe import InstructionProbe, load_probe
from rag.prompts import build_messages
from rag.settings import Settings


def timed_ms(question: str, cards: list[Card], probe: InstructionProbe | None) -> float:
    start = time.perf_counter()
    build_messages(question, cards, probe)
    return (time.perf_counter() - start) * 1000


def contexts(settings: Settings) -> tuple[list[tuple[str, list[Card]]], InstructionProbe]:
    components = build_components(settings)
    components.indexer.sync(all_cards(load_corpus(settings.corpus_dir)))
    answerer = components.answerer
    picked = []
    for query in load_queries():
        hits = answerer.retriever.read_and_search(query.question, settings.retrieval.top_k).hits
        picked.append((query.question, [hit.card for hit in answerer.within_margin(hits)]))
    probe = load_probe(components.embedder, ENCODER_NAME)
    assert probe is not None, "the probe ships for the bundled encoder"
    return picked, probe


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="cardrag-probe-bench-") as data_dir:
        settings = Settings(data_dir=Path(data_dir), llm={"backend": "fake", "preload": False})
        picked, warm = contexts(settings)
        for question, cards in picked[:5]:  # load the encoder's kernels before timing
            build_messages(question, cards, InstructionProbe(warm.weights, warm.embedder))
        rows: dict[str, list[float]] = {"no probe": [], "cold probe": [], "warm probe": []}
        for question, cards in picked:
            cold = InstructionProbe(warm.weights, warm.embedder)
            rows["no probe"].append(timed_ms(question, cards, None))
            rows["cold probe"].append(timed_ms(question, cards, cold))
            rows["warm probe"].append(timed_ms(question, cards, warm))
    cards_shown = sum(len(cards) for _, cards in picked) / len(picked)
    table = "\n".join(
        f"| {name} | {percentile(ms, 0.5):.2f} | {percentile(ms, 0.95):.2f} | {max(ms):.2f} |"
        for name, ms in rows.items()
    )
    body = f"""## The instruction probe's cost per answer (`python -m bench.probe_cost`)

Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, load average {load_average()} at the end:
building the prompt of each of the {len(picked)} retrieval-eval questions' answers
({cards_shown:.1f} cards shown on average), real encoder (onnx), 2 cores. Cold: a new probe
per prompt, every card sentence embedded; warm: the server's probe, which caches sentence
scores (the cards of a related question were seen before).

| prompt built | p50 ms | p95 ms | max ms |
| --- | --- | --- | --- |
{table}

For scale: an answer's generation with the bundled 1.5B model took p50 10.6 s and p95
22.2 s (docs/EVALS.md, session 12), so the cold p95 is about 2 % of an answer. The time
counts against the answer's deadline (llm.timeout), like generation."""
    print(write_section("probe-cost", body))


if __name__ == "__main__":
    main()

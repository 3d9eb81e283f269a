"""What the sentence flaggers (rag.probe, rag.language) add to building an answer's prompt,
and what grounding costs after generation, in docs/BENCHMARKS.md.

For every retrieval-eval question (289) the cards an answer would show are retrieved once,
as the Answerer picks them (top k, within the context margin); then the prompt is built
with no flagger, with a cold probe (nothing cached: every sentence embedded), with the
shared warm probe a server keeps (a card seen before is not embedded again), with the
language flagger, and with both (warm probe); then an answer over the same cards is
grounded with a cold sentence cache and with the cache the probe shares. Real encoder, the
shipped corpus, idle machine. Run: .venv/bin/python -m bench.probe_cost
"""

import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.report import load_average, percentile, write_section
from evals.retrieval import load_queries
from rag.cards import Card
from rag.components import build_indexed
from rag.embedding import ENCODER_NAME
from rag.grounding import Grounder
from rag.guard import AnyOf, SentenceFlagger
from rag.language import LanguageFlagger
from rag.probe import InstructionProbe, load_probe
from rag.prompts import build_messages
from rag.settings import Settings
from rag.similarity import SentenceVectors


def timed_ms(question: str, cards: list[Card], flagger: SentenceFlagger | None) -> float:
    start = time.perf_counter()
    build_messages(question, cards, flagger)
    return (time.perf_counter() - start) * 1000


def cold_probe(warm: InstructionProbe) -> InstructionProbe:
    """The same probe with an empty sentence cache: the first answer about these cards."""
    return InstructionProbe(warm.weights, SentenceVectors(warm.vectors.embedder))


def contexts(settings: Settings) -> tuple[list[tuple[str, list[Card]]], InstructionProbe]:
    components = build_indexed(settings)
    answerer = components.answerer
    picked = []
    for query in load_queries():
        hits = answerer.retriever.read_and_search(query.question, settings.retrieval.top_k).hits
        picked.append((query.question, [hit.card for hit in answerer.within_margin(hits)]))
    probe = load_probe(SentenceVectors(components.embedder), ENCODER_NAME)
    assert probe is not None, "the probe ships for the bundled encoder"
    return picked, probe


def timed_grounding_ms(grounder: Grounder, cards: list[Card], question: str | None = None) -> float:
    """Grounding an answer that restates each shown card's short answer, cited: as many
    sentences to check as a typical answer, each with a card that supports it. With the
    question, a grounder whose relevance check is on also runs it."""
    answer = " ".join(f"{card.short_answer} [{n}]" for n, card in enumerate(cards, 1))
    start = time.perf_counter()
    grounder.ground(answer, cards, question)
    return (time.perf_counter() - start) * 1000


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="cardrag-probe-bench-") as data_dir:
        settings = Settings(data_dir=Path(data_dir), llm={"backend": "fake", "preload": False})
        picked, warm = contexts(settings)
        language = LanguageFlagger()
        shipped = AnyOf(warm, language)
        for question, cards in picked[:5]:  # load the models and kernels before timing
            build_messages(question, cards, AnyOf(cold_probe(warm), language))
        retrieval = settings.retrieval
        grounder = Grounder(warm.vectors, retrieval.min_support,
                            retrieval.min_word_share)  # fmt: skip
        # The relevance check (retrieval.min_relevance, off by default) at the value measured
        # in session 15: the question rides in the answer's encoder batch, and the shown
        # cards' questions come from the shared cache.
        relevance = Grounder(warm.vectors, retrieval.min_support, retrieval.min_word_share,
                             min_relevance=0.1)  # fmt: skip
        rows: dict[str, list[float]] = {
            "no flagger": [], "probe, cold": [], "probe, warm": [], "language flagger": [],
            "probe (warm) + language flagger": [], "grounding, cold": [],
            "grounding, after the probe (shared cache)": [],
            "grounding, after the probe, relevance check on (min_relevance 0.1)": [],
        }
        for question, cards in picked:
            cold = cold_probe(warm)
            rows["no flagger"].append(timed_ms(question, cards, None))
            rows["probe, cold"].append(timed_ms(question, cards, cold))
            rows["probe, warm"].append(timed_ms(question, cards, warm))
            rows["language flagger"].append(timed_ms(question, cards, language))
            rows["probe (warm) + language flagger"].append(timed_ms(question, cards, shipped))
            cold_grounder = Grounder(SentenceVectors(grounder.embedder),
                                     retrieval.min_support, retrieval.min_word_share)  # fmt: skip
            rows["grounding, cold"].append(timed_grounding_ms(cold_grounder, cards))
            rows["grounding, after the probe (shared cache)"].append(
                timed_grounding_ms(grounder, cards)
            )
            rows["grounding, after the probe, relevance check on (min_relevance 0.1)"].append(
                timed_grounding_ms(relevance, cards, question)
            )
    cards_shown = sum(len(cards) for _, cards in picked) / len(picked)
    table = "\n".join(
        f"| {name} | {percentile(ms, 0.5):.2f} | {percentile(ms, 0.95):.2f} | {max(ms):.2f} |"
        for name, ms in rows.items()
    )
    body = f"""## Flaggers and grounding, cost per answer (`python -m bench.probe_cost`)

Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, load average {load_average()} at the end:
building the prompt of each of the {len(picked)} retrieval-eval questions' answers
({cards_shown:.1f} cards shown on average), real encoder (onnx), 2 cores. Cold: a new probe
per prompt, every card sentence embedded; warm: the server's probe, whose cache of sentence
vectors (shared with grounding) holds the cards of related questions seen before. The
language flagger caches nothing. The fifth row runs after the warm probe's row, so its probe
part is cached. Grounding compares each answer sentence with every sentence of the shown
cards (since session 14); the answer grounded here restates each shown card's short answer.
Cold: no card sentence embedded before; after the probe: the server's case, where the probe
has just read the same card sentences into the shared cache and only the answer is embedded.
The last row adds the optional relevance check, which embeds the question with the answer.

| prompt built / answer grounded | p50 ms | p95 ms | max ms |
| --- | --- | --- | --- |
{table}

For scale: an answer's generation with the bundled 1.5B model took p50 10.6 s and p95
22.2 s (docs/EVALS.md, session 12), so the cold probe's p95 is about 2 % of an answer. The time
counts against the answer's deadline (llm.timeout), like generation."""
    print(write_section("probe-cost", body))


if __name__ == "__main__":
    main()

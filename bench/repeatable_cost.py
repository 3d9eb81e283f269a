"""What `llm.repeatable` costs and buys, in docs/BENCHMARKS.md.

The bundled model answers the first eight dev questions of the retrieval eval, then the
first and the fourth again, once with the setting off (as served) and once on, in one
process (the on run clears the context before every prompt, so the off run before it
cannot leak into it). Reported: generation time per answer (the first eight), and whether
each repeated question got the same draft as the first time. Real encoder, the bundled
1.5B model, the shipped corpus ingested into a temporary data directory, 2 cores.
Run: .venv/bin/python -m bench.repeatable_cost
"""

import statistics
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from bench.report import load_average, write_section
from evals.retrieval import load_queries
from rag.components import Components, build_indexed
from rag.settings import Settings

QUESTIONS = 8
REPEATED = (0, 3)


def run(components: Components, questions: list[str]) -> tuple[list[float], list[bool]]:
    """Generation ms of each question, and for each repeated one whether its draft matched."""
    drafts, generate_ms = [], []
    for question in questions:
        answer = components.answerer.ask(question)
        drafts.append(answer.draft)
        generate_ms.append(answer.timings.get("generate_ms", 0.0))
    same = [components.answerer.ask(questions[i]).draft == drafts[i] for i in REPEATED]
    return generate_ms, same


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="cardrag-bench-") as data_dir:
        settings = Settings(data_dir=Path(data_dir))
        settings.llm.timeout = 120  # measure generation, not the deadline
        components = build_indexed(settings)
        questions = [q.question for q in load_queries(split="dev")[:QUESTIONS]]
        results = {}
        for repeatable in (False, True):
            components.answerer.llm.repeatable = repeatable
            results[repeatable] = run(components, questions)
    rows = []
    for repeatable, (generate_ms, same) in results.items():
        rows.append(
            f"| {'on' if repeatable else 'off (default)'} "
            f"| {statistics.median(generate_ms) / 1000:.1f} | {sum(generate_ms) / 1000:.1f} "
            f"| {sum(same)} of {len(same)} |"
        )
    body = f"""## Repeatable answers, cost (`python -m bench.repeatable_cost`)

Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, load average {load_average()} at the end:
the bundled 1.5B model answering the first {QUESTIONS} dev questions of the retrieval eval,
then questions {", ".join(str(i + 1) for i in REPEATED)} again, in one process; first with
`llm.repeatable` off, then on. Generation time is the first {QUESTIONS} answers'.

| llm.repeatable | generation p50 s | total s | repeated question, same draft |
| --- | --- | --- | --- |
{chr(10).join(rows)}

On, every prompt is read from a cleared context with one seed. Off, llama-cpp-python reuses
the keys and values of the previous prompt's shared prefix (the system prompt) and seeds
each call from the previous one, so an answer depends on what the process was asked
before."""
    print(write_section("repeatable-cost", body))


if __name__ == "__main__":
    main()

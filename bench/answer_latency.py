"""Answer latency of the in-process service, written to docs/BENCHMARKS.md.

Measures on the shipped corpus, with the bundled LLM, over the first in-corpus questions of
the eval's dev split: total time per answer (retrieval, generation, grounding), tokens in
the answer, generation rate, and the process's peak RSS.
Run: .venv/bin/python -m bench.answer_latency [--model NAME] [--answers N]
"""

import argparse
import platform
import resource
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.report import percentile, write_section
from evals.retrieval import load_queries
from rag.cards import all_cards, load_corpus
from rag.components import build_components
from rag.settings import Settings


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="qwen2.5-coder-1.5b-instruct")
    parser.add_argument("--answers", type=int, default=12)
    parser.add_argument("--data-dir", default="/tmp/cardrag-bench")
    args = parser.parse_args()

    settings = Settings(data_dir=Path(args.data_dir), llm={"model": args.model})
    components = build_components(settings)
    cards = all_cards(load_corpus(settings.corpus_dir))
    components.indexer.sync(cards)
    queries = [q.question for q in load_queries(split="dev")]

    load_started = time.perf_counter()
    components.llm.load()
    load_s = time.perf_counter() - load_started
    model = components.llm._model  # the llama_cpp.Llama, to count generated tokens
    rows = []
    for question in queries[: args.answers]:
        started = time.perf_counter()
        answer = components.answerer.ask(question)
        total = time.perf_counter() - started
        if answer.refused:
            continue
        tokens = len(model.tokenize(answer.answer.encode(), add_bos=False))
        generate_s = answer.timings["generate_ms"] / 1000
        rows.append((total, generate_s, tokens))
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    totals = [r[0] for r in rows]
    rates = [r[2] / r[1] for r in rows if r[1] > 0]
    body = "\n".join([
        f"## Answer latency ({datetime.now(UTC):%Y-%m-%d}, {platform.machine()}, "
        f"2 cores, `python -m bench.answer_latency`)",
        "",
        f"Corpus: {len(cards)} cards. "
        f"LLM: {args.model} Q4_K_M on llama-cpp-python (portable AVX2 build), "
        f"{settings.llm.threads} threads; encoder all-MiniLM-L6-v2 on "
        f"{settings.embedder.threads} torch threads.",
        "",
        "| measure | value |",
        "| --- | --- |",
        f"| model load | {load_s:.1f} s |",
        f"| answers measured (not refused, of {args.answers}) | {len(rows)} |",
        f"| answer latency p50 / p95 / max | {percentile(totals, 0.5):.2f} s / "
        f"{percentile(totals, 0.95):.2f} s / {max(totals):.2f} s |",
        f"| answer length, median | {statistics.median(r[2] for r in rows):.0f} tokens |",
        f"| end-to-end generation rate, median (prompt + decode) | "
        f"{statistics.median(rates):.1f} tokens/s |",
        f"| peak RSS (encoder + Chroma + LLM in one process) | {rss_mb:.0f} MB |",
    ])
    print(write_section("answer-latency", body))


if __name__ == "__main__":
    main()

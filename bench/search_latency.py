"""Search latency through the API (GET /v1/search, top-5): dense, hybrid without spelling
correction, and hybrid as shipped.

Every eval question, several rounds, in one process with the real encoder and Chroma; the
app is driven through Starlette's TestClient, so routing, validation and serialisation are
counted but no socket is. Written to docs/BENCHMARKS.md.
Run: .venv/bin/python -m bench.search_latency
"""

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from fastapi.testclient import TestClient

from api.app import create_app
from bench.report import load_average, percentile, write_section
from evals.retrieval import load_queries
from rag.cards import all_cards, load_corpus
from rag.components import build_indexed
from rag.embedding import build_embedder
from rag.settings import Settings
from rag.testing import FakeLLM

ROUNDS = 3


# name -> retrieval settings; the last is cardrag's default.
CONFIGURATIONS = {
    "dense": {"mode": "dense"},
    "hybrid, no spelling correction": {"mode": "hybrid", "spelling": False},
    "hybrid (default)": {"mode": "hybrid", "spelling": True},
}


@dataclass
class Run:
    start_up_ms: float  # the app's start-up: building the search indexes (LLM not loaded)
    first_ms: float  # the first search after start-up
    timings: list[float]  # every later search


def measure(retrieval: dict, data_dir: Path, embedder) -> Run:  # type: ignore[no-untyped-def]
    # Without the per-client rate limit: one test client sends hundreds of searches a minute.
    settings = Settings(data_dir=data_dir, retrieval=retrieval,
                        security={"rate_limit_enabled": False})  # fmt: skip
    components = build_indexed(settings, llm=FakeLLM(), embedder=embedder)
    questions = [q.question for q in load_queries()]
    timings = []
    started = time.perf_counter()
    with TestClient(create_app(settings, components)) as client:
        start_up_ms = (time.perf_counter() - started) * 1000
        started = time.perf_counter()
        client.get("/v1/search", params={"q": "warm-up"})
        first_ms = (time.perf_counter() - started) * 1000
        for _ in range(ROUNDS):
            for question in questions:
                started = time.perf_counter()
                response = client.get("/v1/search", params={"q": question, "k": 5})
                timings.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200
    return Run(start_up_ms, first_ms, timings)


def main() -> None:
    settings = Settings()
    embedder = build_embedder(settings.embedder, settings.models_dir)
    data_dir = Path("/tmp/cardrag-bench-search")
    rows = []
    for name, retrieval in CONFIGURATIONS.items():
        run = measure(retrieval, data_dir, embedder)
        ms = run.timings
        rows.append(f"| {name} | {len(ms)} | {percentile(ms, 0.5):.1f} | "
                    f"{percentile(ms, 0.95):.1f} | {percentile(ms, 0.99):.1f} | "
                    f"{run.start_up_ms:.0f} | {run.first_ms:.1f} |")  # fmt: skip
    body = "\n".join([
        f"## Search latency ({datetime.now(UTC):%Y-%m-%d}, 2 cores, "
        "`python -m bench.search_latency`)",
        "",
        f"GET /v1/search, k=5, the {len(load_queries())} eval questions × {ROUNDS} rounds, "
        f"shipped corpus ({len(all_cards(load_corpus(settings.corpus_dir)))} cards), "
        "real encoder (onnxruntime, 2 threads) and embedded Chroma, through the ASGI app "
        "in-process (no socket). "
        "`dense` is the retriever before hybrid search; `hybrid (default)` is cardrag's, "
        "which corrects the query's spelling first (rag.spelling). "
        "*Start-up*: entering the app's lifespan, which builds the live collection's "
        "BM25 index and speller (the LLM is a fake here, so no model is loaded); "
        "*first search*: the one request before the timed rounds. "
        f"Load average after the run: {load_average()}.",
        "",
        "| retriever | searches | p50 ms | p95 ms | p99 ms | start-up ms | first search ms |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        *rows,
    ])  # fmt: skip
    print(write_section("search-latency", body))


if __name__ == "__main__":
    main()

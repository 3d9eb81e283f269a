"""The scaled-out deployment on one machine: API workers, one Chroma server, an external LLM.

- `chroma run` on loopback holds the index: the vectors, metadata and documents of the
  embedded index bench.scale built at 10k cards are copied into it as they are (ingesting
  again would only re-measure the encoder);
- `cardrag serve --workers W` with CARDRAG_CHROMA__URL, W = 1 and 2, the LLM on
  llama-cpp-python's OpenAI-compatible server (`python -m llama_cpp.server`), the
  stand-in for vLLM or llama.cpp's llama-server;
- search load: hybrid, 8 concurrent clients; answers: a few /v1/ask at 2 concurrent clients.
Written to docs/BENCHMARKS.md; docs/SCALING.md explains the deployment.
Run: .venv/bin/python -m bench.scale_out [--size 10000] [--requests 200]
"""

import argparse
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import httpx

from bench.report import load_average, percentile, write_section
from bench.scale import WORK, index_dir
from bench.serving import (
    SEARCH_PARAMS,
    cardrag_server,
    chroma_server,
    free_port,
    load,
    peak_rss_mb,
    running,
)
from bench.synthetic import queries, synthetic_cards
from evals.retrieval import load_queries
from rag.published import read_published
from rag.settings import Settings
from rag.store import chroma_client

BATCH = 1000


def copy_index(source_dir: Path, url: str, collection: str, target_name: str) -> int:
    """Copy an embedded index's live collection into the server, vectors included (the
    API reads it there under its base name: no pointer file in its own data dir)."""
    published = read_published(source_dir)
    live = published.collection if published else collection
    source = chroma_client(source_dir).get_collection(live)
    target = chroma_client(source_dir, url).get_or_create_collection(
        target_name, embedding_function=None, metadata={"hnsw:space": "cosine"}
    )
    total = source.count()
    for offset in range(0, total, BATCH):
        part = source.get(limit=BATCH, offset=offset,
                          include=["embeddings", "metadatas", "documents"])  # fmt: skip
        target.add(ids=part["ids"], embeddings=part["embeddings"],
                   metadatas=part["metadatas"], documents=part["documents"])  # fmt: skip
    return total


def llm_server(port: int, model: Path):  # type: ignore[no-untyped-def]
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host",
               "127.0.0.1", "--port", str(port), "--n_ctx", "4096", "--n_threads", "2",
               "--model_alias", "cardrag-llm"]  # fmt: skip
    return running(command, f"http://127.0.0.1:{port}/v1/models")


def ask_many(url: str, questions: list[str], clients: int) -> list[tuple[float, bool]]:
    """Seconds per answer, and whether the LLM wrote it (not refused, not degraded)."""

    def one(question: str) -> tuple[float, bool]:
        started = time.perf_counter()
        response = httpx.post(url, json={"question": question}, timeout=900)
        assert response.status_code == 200, response.text[:300]
        body = response.json()
        return time.perf_counter() - started, not (body["refused"] or body["degraded"])

    with ThreadPoolExecutor(clients) as pool:
        return list(pool.map(one, questions))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=10000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--answers", type=int, default=4)
    parser.add_argument("--shipped-index", default="/tmp/cardrag-bench",
                        help="data dir of the shipped corpus's index (bench.answer_latency)")
    parser.add_argument("--vectors", choices=["encoder", "hashing"], default="hashing",
                        help="which index bench.scale built to copy")  # fmt: skip
    args = parser.parse_args()
    settings = Settings()
    from rag.model_assets import model_path

    cards = synthetic_cards(args.size)
    params = [{"q": q, **SEARCH_PARAMS} for q in queries(cards, args.requests)]
    asks = [q.question for q in load_queries(split="dev") if q.primary()][: args.answers]
    rows = []
    chroma_port, llm_port = free_port(), free_port()
    model = model_path(settings.models_dir, settings.llm.model)
    with (
        tempfile.TemporaryDirectory() as chroma_dir,
        chroma_server(chroma_port, Path(chroma_dir)) as chroma,
        llm_server(llm_port, model) as llm,
    ):
        url = f"http://127.0.0.1:{chroma_port}"
        source = index_dir("cardrag", args.size, args.vectors)
        collection = settings.chroma.collection
        copied = copy_index(source, url, collection, collection)
        # Answers need cards the questions are about: the shipped corpus, as ingested by
        # bench.answer_latency (real encoder), in a collection of its own.
        shipped = Path(chroma_dir) / "shipped-copy"  # another process may have it open
        shutil.copytree(args.shipped_index, shipped)
        copy_index(shipped, url, collection, "shipped")
        env = {"CARDRAG_CHROMA__URL": url, "CARDRAG_DATA_DIR": str(WORK / "scale-out"),
               "CARDRAG_LLM__BACKEND": "openai", "CARDRAG_LLM__MODEL": "cardrag-llm",
               "CARDRAG_LLM__BASE_URL": f"http://127.0.0.1:{llm_port}/v1",
               "CARDRAG_LLM__TIMEOUT": "600", "CARDRAG_LLM__MAX_TOKENS": "96"}  # fmt: skip
        for workers in (1, 2):
            port = free_port()
            with cardrag_server(port, env, workers=workers) as api:
                search = f"http://127.0.0.1:{port}/v1/search"
                load(search, params[:20], workers)  # warm every worker
                before = load_average()
                result = load(search, params, 8)
                ms = result.latencies_ms
                rows.append(
                    f"| {workers} | {percentile(ms, 0.5):.0f} | {percentile(ms, 0.95):.0f} | "
                    f"{result.rps:.1f} | {result.errors} | {peak_rss_mb(api.pid):.0f} | "
                    f"{before} → {load_average()} |"
                )  # fmt: skip
        answers, answer_load = [], ""
        if asks:
            port = free_port()
            with cardrag_server(port, {**env, "CARDRAG_CHROMA__COLLECTION": "shipped"},
                                workers=2):  # fmt: skip
                before = load_average()
                answers = ask_many(f"http://127.0.0.1:{port}/v1/ask", asks, 2)
                answer_load = f"{before} → {load_average()}"
        chroma_rss, llm_rss = peak_rss_mb(chroma.pid), peak_rss_mb(llm.pid)
    seconds = [t for t, _ in answers] or [float("nan")]
    generated = sum(1 for _, wrote in answers if wrote)
    body = "\n".join([
        f"## Scale-out on one machine ({datetime.now(UTC):%Y-%m-%d}, 2 cores shared, "
        "`python -m bench.scale_out`)",
        "",
        f"{copied:,} synthetic cards ({args.vectors} card vectors, see above) in one `chroma "
        "run` server on loopback; `cardrag serve --workers W` with CARDRAG_CHROMA__URL; LLM: "
        "the bundled 1.5B model on `python -m llama_cpp.server` (2 threads) through the "
        f"`openai` backend. Search: {len(params)} hybrid searches, 8 concurrent clients. RSS: "
        "the API processes together (parent and workers). Chroma server peak RSS "
        f"{chroma_rss:.0f} MB, LLM server {llm_rss:.0f} MB.",
        "",
        "| API workers | search p50 ms | p95 ms | req/s | errors | API RSS MB | load avg |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        *rows,
        *([""] if answers else []),
        *([f"Answers through the same deployment (2 workers, the shipped corpus in a second "
        f"collection of the Chroma server, at most 96 tokens): {len(answers)} /v1/ask at 2 "
        f"concurrent clients, {generated} written by the LLM server, "
        f"{percentile(seconds, 0.5):.1f} s median, {max(seconds):.1f} s max "
        f"(load {answer_load}). The LLM server answers one request at a time, so the second "
        "of two simultaneous questions waits for the first."] if answers else []),
    ])  # fmt: skip
    print(write_section("scale-out", body))


if __name__ == "__main__":
    main()

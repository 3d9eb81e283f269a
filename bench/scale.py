"""Ingestion and search at 1k / 10k / 100k synthetic cards, cardrag beside the naive pipeline.

Ingestion (each system in a fresh child process, so its peak RSS is its own): cards/s of a
full ingest against the raw encoder (the onnxruntime session, or
`SentenceTransformer.encode` with the torch backend) on the same texts in the same process
right before it (other jobs share the CPU, so the two are measured back to
back), then an unchanged re-ingest as a share of the full one.
Search: the server in a child process, the load from this one over loopback (bench.serving),
GET /v1/search k=5 at 1 and 8 concurrent clients; cardrag dense, cardrag hybrid, naive.
With --vectors hashing the cards are embedded by the hashing fake instead (queries still
by the encoder): it times the ingestion around the encoder and builds large indexes for
the search runs quickly. Results accumulate in /tmp/cardrag-perf/results.json; the report
and plots are rewritten from it, so sizes can be run one at a time.
Run: .venv/bin/python -m bench.scale [--sizes 1000 10000] [--requests 200]
"""

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.report import load_average, percentile
from bench.serving import (
    SEARCH_PARAMS,
    cardrag_server,
    cpu_seconds,
    free_port,
    load,
    peak_rss_mb,
    running,
)
from bench.synthetic import queries, synthetic_cards
from rag.settings import REPO_ROOT

WORK = Path("/tmp/cardrag-perf")
RESULTS = WORK / "results.json"
CLIENTS = (1, 8)
SEARCH_SYSTEMS = ("cardrag dense", "cardrag hybrid", "naive LlamaIndex")
# Variants of the hybrid server measured on request (--systems), by the settings they change:
# the encoder on one thread instead of two, and on torch (the backend before ONNX).
VARIANTS = {
    "cardrag hybrid, 1 encoder thread": {"CARDRAG_EMBEDDER__THREADS": "1"},
    "cardrag hybrid, torch encoder": {"CARDRAG_EMBEDDER__BACKEND": "sentence-transformers"},
}
ENCODER_DIMENSIONS = 384  # all-MiniLM-L6-v2


@contextmanager
def timed(result: dict[str, float], name: str) -> Iterator[None]:
    """Wall seconds and CPU seconds (all threads of this process) of the block."""
    wall, cpu = time.perf_counter(), time.process_time()
    yield
    result[f"{name}_s"] = time.perf_counter() - wall
    result[f"{name}_cpu_s"] = time.process_time() - cpu


def raw_encode(embedder: object, texts: list[str], batch_size: int) -> None:
    """The encoder itself on the texts, without LlamaIndex, the docstore or Chroma: the
    onnxruntime session (OnnxEmbedding's own batching), or SentenceTransformer.encode."""
    from rag.onnx_encoder import OnnxEmbedding

    if isinstance(embedder, OnnxEmbedding):
        embedder._encode(texts)
    else:
        embedder._model.encode(texts, batch_size=batch_size, normalize_embeddings=True)  # type: ignore[attr-defined]


def ingest_child(size: int, system: str, vectors: str) -> dict[str, float]:
    """Runs in its own process: one ingest of `size` cards, printed as JSON.

    vectors="encoder": the real encoder; its raw pass runs right before cardrag's ingest,
    so both see the same machine load. vectors="hashing": the hashing fake (384 dims, a
    few µs a card) in place of the encoder, so what is timed is everything around the
    encoder (pipeline, docstore, Chroma), and large indexes for the search benchmark can be
    built in minutes; an unchanged re-ingest embeds nothing, so its time is the same with
    either."""
    from rag.embedding import build_embedder
    from rag.settings import Settings
    from rag.testing import HashingEmbedding

    settings = Settings(data_dir=index_dir("cardrag", size, vectors), llm={"backend": "fake"})
    if vectors == "encoder":
        embedder = build_embedder(settings.embedder, settings.models_dir)
    else:
        # Stands in for the encoder: the index records the configured encoder (the real
        # one), so the server embeds queries for real and serves it; its rankings mean
        # nothing, its latency is the real one's (same dimensions, same counts).
        embedder = HashingEmbedding(dimensions=ENCODER_DIMENSIONS)
    cards = synthetic_cards(size)
    texts = [card.embedding_text() for card in cards]
    embedder.get_text_embedding("warm-up")
    started_load = load_average()
    result: dict[str, float] = {}
    if system == "cardrag":
        from rag.components import build_components
        from rag.testing import FakeLLM

        shutil.rmtree(settings.data_dir, ignore_errors=True)
        components = build_components(settings, llm=FakeLLM(), embedder=embedder)
        if vectors == "encoder":
            with timed(result, "raw_encode"):  # the raw encoder on the same texts, just before
                raw_encode(embedder, texts, settings.embedder.batch_size)
        with timed(result, "ingest"):
            components.indexer.sync(cards)
        with timed(result, "reingest"):
            report = components.indexer.sync(cards)
        assert report.unchanged == size, report
    else:
        from bench.naive import build

        persist = index_dir("naive", size, vectors)
        shutil.rmtree(persist, ignore_errors=True)
        with timed(result, "ingest"):
            build(cards, embedder, persist)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result["load"] = f"{started_load} → {load_average()}"  # type: ignore[assignment]
    return result


def run_ingest(size: int, system: str, vectors: str) -> dict[str, float]:
    command = [sys.executable, "-m", "bench.scale", "--ingest-child", system, "--vectors",
               vectors, "--sizes", str(size)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def index_dir(system: str, size: int, vectors: str) -> Path:
    return WORK / f"{system}-{size}-{vectors}"


def run_search(size: int, system: str, requests: int, vectors: str) -> dict[str, object]:
    cards = synthetic_cards(size)
    params = [{"q": q, **SEARCH_PARAMS} for q in queries(cards, requests)]
    port = free_port()
    if system == "naive LlamaIndex":
        command = [sys.executable, "-m", "bench.naive", "serve", "--index",
                   str(index_dir("naive", size, vectors)), "--port", str(port)]  # fmt: skip
        server = running(command, f"http://127.0.0.1:{port}/healthz")
    else:
        env = {"CARDRAG_DATA_DIR": str(index_dir("cardrag", size, vectors)),
               "CARDRAG_LLM__BACKEND": "fake",
               "CARDRAG_RETRIEVAL__MODE": "dense" if system == "cardrag dense" else "hybrid",
               **VARIANTS.get(system, {})}  # fmt: skip
        server = cardrag_server(port, env)
    url = f"http://127.0.0.1:{port}/v1/search"
    rows: dict[str, object] = {}
    with server as process:
        load(url, params[:20], 1)  # warm-up: first queries build BM25, fill caches
        for clients in CLIENTS:
            before, cpu_before = load_average(), cpu_seconds(process.pid)
            result = load(url, params, clients)
            cpu_ms = (cpu_seconds(process.pid) - cpu_before) * 1000 / len(params)
            ms = result.latencies_ms
            rows[str(clients)] = {
                "p50": percentile(ms, 0.5), "p95": percentile(ms, 0.95),
                "p99": percentile(ms, 0.99), "rps": result.rps, "errors": result.errors,
                "requests": len(ms), "load": f"{before} → {load_average()}",
                "cpu_ms": cpu_ms,
            }  # fmt: skip
        rows["peak_rss_mb"] = peak_rss_mb(process.pid)
    rows["code"] = code_version()
    return rows


def code_version() -> str:
    """The commit the measured server ran ('+' when the work tree had changes), so rows of
    different runs in one table say which code each measured."""
    git = ["git", "-C", str(REPO_ROOT)]
    commit = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()  # fmt: skip
    dirty = subprocess.run([*git, "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()  # fmt: skip
    return f"{commit}{'+' if dirty else ''}" if commit else "unknown"


def save(key: str, value: object) -> None:
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results[key] = value
    RESULTS.write_text(json.dumps(results, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--vectors", choices=["encoder", "hashing"], default="encoder",
                        help="what embeds the cards at ingest (queries always use the "
                        "encoder): hashing builds big indexes fast, see ingest_child")  # fmt: skip
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--skip-ingest", action="store_true")
    parser.add_argument("--skip-search", action="store_true")
    parser.add_argument("--ingest-systems", nargs="+", choices=["cardrag", "naive"],
                        default=["cardrag", "naive"])  # fmt: skip
    parser.add_argument("--ingest-child", choices=["cardrag", "naive"])
    parser.add_argument("--systems", nargs="+", default=list(SEARCH_SYSTEMS),
                        choices=[*SEARCH_SYSTEMS, *VARIANTS])  # fmt: skip
    args = parser.parse_args()
    if args.ingest_child:
        print(json.dumps(ingest_child(args.sizes[0], args.ingest_child, args.vectors)))
        return
    WORK.mkdir(exist_ok=True)
    for size in args.sizes:
        if not args.skip_ingest:
            for system in args.ingest_systems:
                result = run_ingest(size, system, args.vectors)
                save(f"ingest-{args.vectors}/{system}/{size}", result)
                print(size, system, "ingested", result, flush=True)
        if not args.skip_search:
            for system in args.systems:
                rows = {**run_search(size, system, args.requests, args.vectors),
                        "vectors": args.vectors}  # fmt: skip
                save(f"search/{system}/{size}", rows)
                print(size, system, "searched", rows, flush=True)
    from bench.scale_report import write_report

    write_report(json.loads(RESULTS.read_text()))


if __name__ == "__main__":
    main()

"""Ingestion and search at 1k / 10k / 100k synthetic cards, cardrag beside the naive pipeline.

Ingestion (each system in a fresh child process, so its peak RSS is its own): cards/s of a
full ingest against the encoder's raw `SentenceTransformer.encode` on the same texts in the
same process right before it (other jobs share the CPU, so the two are measured back to
back), then an unchanged re-ingest as a share of the full one.
Search: the server in a child process, the load from this one over loopback (bench.serving),
GET /v1/search k=5 at 1 and 8 concurrent clients; cardrag dense, cardrag hybrid, naive.
Results accumulate in /tmp/cardrag-perf/results.json; the report and plots are rewritten
from it, so sizes can be run one at a time.
Run: .venv/bin/python -m bench.scale [--sizes 1000 10000] [--requests 200]
"""

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench.report import load_average, percentile
from bench.serving import cardrag_server, free_port, load, peak_rss_mb, running
from bench.synthetic import queries, synthetic_cards

WORK = Path("/tmp/cardrag-perf")
RESULTS = WORK / "results.json"
CLIENTS = (1, 8)
SEARCH_SYSTEMS = ("cardrag dense", "cardrag hybrid", "naive LlamaIndex")


def ingest_child(size: int, system: str) -> dict[str, float]:
    """Runs in its own process: one ingest of `size` cards, printed as JSON. The raw encoder
    pass runs right before cardrag's ingest, so both see the same machine load."""
    from rag.embedding import build_embedder
    from rag.settings import Settings

    settings = Settings(data_dir=WORK / f"cardrag-{size}", llm={"backend": "fake"})
    embedder = build_embedder(settings.embedder)
    cards = synthetic_cards(size)
    texts = [card.embedding_text() for card in cards]
    embedder.get_text_embedding("warm-up")
    started_load = load_average()

    def raw_encode() -> float:
        started = time.perf_counter()
        embedder._model.encode(texts, batch_size=settings.embedder.batch_size,
                               normalize_embeddings=True)  # fmt: skip
        return time.perf_counter() - started

    result: dict[str, float] = {}
    if system == "cardrag":
        from rag.components import build_components
        from rag.testing import FakeLLM

        shutil.rmtree(settings.data_dir, ignore_errors=True)
        components = build_components(settings, llm=FakeLLM(), embedder=embedder)
        result["raw_encode_s"] = raw_encode()  # right before the ingest, on the same texts
        started = time.perf_counter()
        components.indexer.sync(cards)
        result["ingest_s"] = time.perf_counter() - started
        started = time.perf_counter()
        report = components.indexer.sync(cards)
        result["reingest_s"] = time.perf_counter() - started
        assert report.unchanged == size, report
    else:
        from bench.naive import build

        persist = WORK / f"naive-{size}"
        shutil.rmtree(persist, ignore_errors=True)
        started = time.perf_counter()
        build(cards, embedder, persist)
        result["ingest_s"] = time.perf_counter() - started
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result["load"] = f"{started_load} → {load_average()}"  # type: ignore[assignment]
    return result


def run_ingest(size: int, system: str) -> dict[str, float]:
    command = [sys.executable, "-m", "bench.scale", "--ingest-child", system, "--sizes", str(size)]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def run_search(size: int, system: str, requests: int) -> dict[str, object]:
    cards = synthetic_cards(size)
    params = [{"q": q, "k": 5} for q in queries(cards, requests)]
    port = free_port()
    if system == "naive LlamaIndex":
        command = [sys.executable, "-m", "bench.naive", "serve", "--index",
                   str(WORK / f"naive-{size}"), "--port", str(port)]  # fmt: skip
        server = running(command, f"http://127.0.0.1:{port}/healthz")
    else:
        env = {"CARDRAG_DATA_DIR": str(WORK / f"cardrag-{size}"), "CARDRAG_LLM__BACKEND": "fake",
               "CARDRAG_RETRIEVAL__MODE": system.split()[-1]}  # fmt: skip
        server = cardrag_server(port, env)
    url = f"http://127.0.0.1:{port}/v1/search"
    rows: dict[str, object] = {}
    with server as process:
        load(url, params[:20], 1)  # warm-up: first queries build BM25, fill caches
        for clients in CLIENTS:
            before = load_average()
            result = load(url, params, clients)
            ms = result.latencies_ms
            rows[str(clients)] = {
                "p50": percentile(ms, 0.5), "p95": percentile(ms, 0.95),
                "p99": percentile(ms, 0.99), "rps": result.rps, "errors": result.errors,
                "requests": len(ms), "load": f"{before} → {load_average()}",
            }  # fmt: skip
        rows["peak_rss_mb"] = peak_rss_mb(process.pid)
    return rows


def save(key: str, value: object) -> None:
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results[key] = value
    RESULTS.write_text(json.dumps(results, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--skip-ingest", action="store_true")
    parser.add_argument("--ingest-child", choices=["cardrag", "naive"])
    args = parser.parse_args()
    if args.ingest_child:
        print(json.dumps(ingest_child(args.sizes[0], args.ingest_child)))
        return
    WORK.mkdir(exist_ok=True)
    for size in args.sizes:
        if not args.skip_ingest:
            for system in ("cardrag", "naive"):
                save(f"ingest/{system}/{size}", run_ingest(size, system))
                print(size, system, "ingested", flush=True)
        for system in SEARCH_SYSTEMS:
            save(f"search/{system}/{size}", run_search(size, system, args.requests))
            print(size, system, "searched", flush=True)
    from bench.scale_report import write_report

    write_report(json.loads(RESULTS.read_text()))


if __name__ == "__main__":
    main()

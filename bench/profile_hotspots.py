"""Where the time goes: pyinstrument profiles of searches and of an ingest.

search: hybrid searches over the index bench.scale built (default 10k cards), in process,
as the /v1/search route runs them; ingest: a full ingest of synthetic cards into a fresh
directory (--vectors hashing: without the encoder, to see the rest). Prints pyinstrument's
call tree (the summary in docs/BENCHMARKS.md is read from it).
Run: .venv/bin/python -m bench.profile_hotspots search|ingest [--size N] [--vectors hashing]
"""

import argparse
import shutil

from pyinstrument import Profiler

from bench.scale import ENCODER_DIMENSIONS, WORK, index_dir
from bench.synthetic import queries, synthetic_cards
from rag.components import build_components
from rag.settings import Settings
from rag.testing import FakeLLM, HashingEmbedding


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=["search", "ingest"])
    parser.add_argument("--size", type=int, default=10000)
    parser.add_argument("--searches", type=int, default=200)
    parser.add_argument("--vectors", choices=["encoder", "hashing"], default="encoder",
                        help="ingest: hashing leaves out the encoder to show the rest")  # fmt: skip
    args = parser.parse_args()
    cards = synthetic_cards(args.size)
    if args.what == "search":
        data_dir = index_dir("cardrag", args.size, "hashing")  # built by bench.scale
        settings = Settings(data_dir=data_dir, llm={"backend": "fake"})
    else:
        settings = Settings(data_dir=WORK / f"profile-ingest-{args.size}", llm={"backend": "fake"})
        shutil.rmtree(settings.data_dir, ignore_errors=True)
    hashing = args.vectors == "hashing"
    embedder = HashingEmbedding(dimensions=ENCODER_DIMENSIONS) if hashing else None
    components = build_components(settings, llm=FakeLLM(), embedder=embedder)
    components.embedder.get_text_embedding("warm-up")
    profiler = Profiler(interval=0.001)
    if args.what == "search":
        components.retriever.search("warm-up", 5)  # builds BM25, as the first request does
        with profiler:
            for query in queries(cards, args.searches):
                components.retriever.search(query, 5)
    else:
        with profiler:
            components.indexer.sync(cards)
    print(profiler.output_text(unicode=True, color=False, show_all=False))


if __name__ == "__main__":
    main()

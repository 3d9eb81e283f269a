"""Tables and PNG plots for bench.scale's results (docs/BENCHMARKS.md, docs/img/)."""

from datetime import UTC, datetime

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402

from bench.report import REPORT, write_section  # noqa: E402

IMG = REPORT.parent / "img"
SEARCH_SYSTEMS = ("cardrag dense", "cardrag hybrid", "cardrag hybrid, 1 encoder thread",
                  "cardrag hybrid, torch encoder", "naive LlamaIndex")


def _sizes(results: dict, prefix: str) -> list[int]:
    return sorted({int(key.rsplit("/", 1)[1]) for key in results if key.startswith(prefix)})


def _raw_cps(results: dict) -> tuple[int, float] | None:
    """The raw encoder's cards/s of the largest encoder run (the estimates' basis)."""
    sizes = _sizes(results, "ingest-encoder/cardrag/")
    if not sizes:
        return None
    return sizes[-1], sizes[-1] / results[f"ingest-encoder/cardrag/{sizes[-1]}"]["raw_encode_s"]


def ingest_table(results: dict) -> list[str]:
    rows = [
        "| cards | system | embedder | ingest s (CPU s) | cards/s | raw encode cards/s | "
        "ratio to raw: wall (CPU) | unchanged re-ingest s (share of full) | peak RSS MB | "
        "load avg |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for size in _sizes(results, "ingest-"):
        raw_run = results.get(f"ingest-encoder/cardrag/{size}", {})
        for vectors in ("encoder", "hashing"):
            for system in ("cardrag", "naive"):
                r = results.get(f"ingest-{vectors}/{system}/{size}")
                if not r:
                    continue
                cps = size / r["ingest_s"]
                if vectors == "encoder":
                    raw_cps = size / raw_run["raw_encode_s"]
                    raw, ratio = f"{raw_cps:.1f}", f"{cps / raw_cps:.2f}×"
                    if "ingest_cpu_s" in r and "raw_encode_cpu_s" in raw_run:
                        ratio += f" ({raw_run['raw_encode_cpu_s'] / r['ingest_cpu_s']:.2f}×)"
                else:
                    raw, ratio = "–", "–"
                if "reingest_s" in r:
                    reingest = f"{r['reingest_s']:.2f} ({r['reingest_s'] / r['ingest_s']:.1%})"
                else:
                    reingest = "rebuilds everything (100 %)"
                cpu = f" ({r['ingest_cpu_s']:.1f})" if "ingest_cpu_s" in r else ""
                rows.append(f"| {size:,} | {system} | {vectors} | {r['ingest_s']:.1f}{cpu} | "
                            f"{cps:.1f} | {raw} | {ratio} | {reingest} | "
                            f"{r['peak_rss_mb']:.0f} | {r['load']} |")  # fmt: skip
    return rows


def ingest_estimates(results: dict) -> list[str]:
    """Full ingest with the encoder where only the hashing run was affordable: the raw
    encoder time at the measured rate plus the measured time around the encoder."""
    basis = _raw_cps(results)
    if basis is None:
        return []
    basis_size, raw_cps = basis
    rows = [
        f"Estimated full ingest with the encoder (raw encoder rate {raw_cps:.1f} cards/s, "
        f"measured at {basis_size:,} cards, plus the measured time around the encoder):",
        "",
        "| cards | estimated ingest s | estimated unchanged re-ingest share |",
        "| --- | --- | --- |",
    ]
    for size in _sizes(results, "ingest-hashing/cardrag/"):
        r = results[f"ingest-hashing/cardrag/{size}"]
        estimate = size / raw_cps + r["ingest_s"]
        rows.append(f"| {size:,} | {estimate:,.0f} | {r['reingest_s'] / estimate:.2%} |")
    return rows


def search_table(results: dict) -> list[str]:
    rows = [
        "| cards | card vectors | system | clients | p50 ms | p95 ms | p99 ms | req/s | errors | "
        "server CPU ms / request | server peak RSS MB | load avg | code |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for size in _sizes(results, "search/"):
        for system in SEARCH_SYSTEMS:
            r = results.get(f"search/{system}/{size}")
            if not r:
                continue
            for clients in ("1", "8"):
                c = r[clients]
                vectors = r.get("vectors", "encoder")
                rows.append(f"| {size:,} | {vectors} | {system} | {clients} | {c['p50']:.1f} | "
                            f"{c['p95']:.1f} | {c['p99']:.1f} | {c['rps']:.1f} | {c['errors']} | "
                            f"{c.get('cpu_ms', float('nan')):.1f} | {r['peak_rss_mb']:.0f} | "
                            f"{c['load']} | {r.get('code', '?')} |")  # fmt: skip
    return rows


def plot_search(results: dict) -> None:
    sizes = _sizes(results, "search/")
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, clients in zip(axes, ("1", "8"), strict=True):
        for system in SEARCH_SYSTEMS:
            points = [(s, results[f"search/{system}/{s}"][clients]["p95"]) for s in sizes
                      if f"search/{system}/{s}" in results]  # fmt: skip
            if points:
                ax.plot(*zip(*points, strict=True), marker="o", label=system)
        ax.set(xscale="log", yscale="log", xlabel="cards", title=f"{clients} client(s)")
        ax.axhline(50, color="grey", linestyle=":", label="target 50 ms")
    axes[0].set_ylabel("search p95 latency, ms")
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(IMG / "search-p95-vs-cards.png", dpi=100)
    plt.close(fig)


def plot_ingest(results: dict) -> None:
    fig, ax = plt.subplots(figsize=(6, 4))
    for vectors, style in (("encoder", "-"), ("hashing", ":")):
        for system in ("cardrag", "naive"):
            prefix = f"ingest-{vectors}/{system}/"
            points = [(s, s / results[f"{prefix}{s}"]["ingest_s"]) for s in _sizes(results, prefix)]
            if points:
                ax.plot(*zip(*points, strict=True), marker="o", linestyle=style,
                        label=f"{system} ingest, {vectors}")  # fmt: skip
    prefix = "ingest-encoder/cardrag/"
    raw = [(s, s / results[f"{prefix}{s}"]["raw_encode_s"]) for s in _sizes(results, prefix)]
    if raw:
        ax.plot(*zip(*raw, strict=True), marker="x", linestyle="--", label="raw encoder")
    ax.set(xscale="log", yscale="log", xlabel="cards", ylabel="cards/s",
           title="Ingestion throughput")  # fmt: skip
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(IMG / "ingest-throughput.png", dpi=100)
    plt.close(fig)


def write_report(results: dict) -> None:
    IMG.mkdir(parents=True, exist_ok=True)
    plot_search(results)
    plot_ingest(results)
    today = f"{datetime.now(UTC):%Y-%m-%d}"
    write_section("scale-ingest", "\n".join([
        f"## Ingestion vs corpus size ({today}, 2 cores, `python -m bench.scale`)",
        "",
        "Synthetic decks (bench/synthetic.py: corpus words, real card lengths), each system in "
        "a fresh process. *raw encode* is the configured encoder on its own (the onnxruntime "
        "session; `SentenceTransformer.encode`, batch 32, before session 4) on the same "
        "texts in cardrag's ingest process, right before its ingest; the ratio is "
        "ingest cards/s over raw cards/s (target ≥ 0.8×). Re-ingest: the same cards again, "
        "nothing changed (target ≤ 3 % of the full ingest). *hashing*: the hashing fake "
        "(384 dims) in place of the encoder, so the time is everything around the encoder "
        "(pipeline, docstore, Chroma); it is how the larger sizes were indexed for the search "
        "runs. CPU s: CPU time of the process (all threads); with other jobs on the cores it is "
        "the steadier measure of the work. Load avg: 1-minute load "
        "average before → after (2 cores; other jobs were running in sessions 1 and 2).",
        "",
        *ingest_table(results),
        "",
        *ingest_estimates(results),
        "",
        *results.get("notes", []),
        "",
        "![ingestion throughput](img/ingest-throughput.png)",
    ]))  # fmt: skip
    write_section("scale-search", "\n".join([
        f"## Search latency vs corpus size, over HTTP ({today}, `python -m bench.scale`)",
        "",
        "GET /v1/search?k=5 over loopback, server in its own process (uvicorn, 1 worker, "
        "embedded Chroma), load from the benchmark process: a closed loop of N httpx clients "
        "(bench/serving.py), each sending its next request when the last returned. Queries are "
        "shortened card questions, always embedded by the real encoder; *card vectors* says what "
        "embedded the cards (hashing: see above; the latency of a search does not depend on "
        "how good the stored vectors are, only on how many). The naive pipeline is served by a "
        "minimal FastAPI app "
        "around `index.as_retriever` (bench/naive.py). Target: p95 ≤ 50 ms at 10k cards with "
        "8 clients. *Server CPU ms / request*: the server process's CPU time over the run "
        "divided by the requests, the cost of one search whatever the wait for a core; 2 idle "
        "cores serve at most 2,000 / that many requests a second. *Code*: the commit the "
        "server ran (`+`: with uncommitted changes); each row is the latest run of its "
        "system and size, so rows of one table can come from different commits.",
        "",
        *search_table(results),
        "",
        "![search p95 vs cards](img/search-p95-vs-cards.png)",
    ]))  # fmt: skip

"""Serving memory with the bundled LLM, by llama.cpp batch size, in docs/BENCHMARKS.md.

Target (issue 7): `cardrag serve` stays within 2.5 GB RSS with the bundled 1.5B model. The
server runs in its own process on the shipped corpus (real encoder, model preloaded); the
benchmark records its resident memory after start-up, then streams a few answers and
records the peak (VmHWM) and the time to first token and to the whole answer, so a smaller
batch is seen to cost, or not cost, answer time.
Run: .venv/bin/python -m bench.serving_memory [--batch-sizes 512 256 128] [--answers 4]
"""

import argparse
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from bench.answer_latency import ask_cardrag
from bench.report import load_average, percentile, write_section
from bench.serving import cardrag_server, free_port, peak_rss_mb
from evals.retrieval import load_queries

TARGET_BYTES = 2.5e9  # "2.5 GB", read as decimal gigabytes: 2,384 MiB


def resident_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    line = next(line for line in status.splitlines() if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def measure(batch_size: int, questions: list[str], data_dir: str) -> dict[str, float]:
    port = free_port()
    # A long timeout: a degraded answer would end generation early and hide its cost.
    env = {"CARDRAG_DATA_DIR": data_dir, "CARDRAG_LLM__BATCH_SIZE": str(batch_size),
           "CARDRAG_LLM__TIMEOUT": "300"}  # fmt: skip
    with cardrag_server(port, env) as server:
        started_mb = resident_mb(server.pid)
        timings = [ask_cardrag(f"http://127.0.0.1:{port}/v1/ask", q)[0] for q in questions]
        return {
            "batch": batch_size,
            "start_mb": started_mb,
            "peak_mb": peak_rss_mb(server.pid),
            "ttft_p50": percentile([t["ttft"] for t in timings], 0.5),
            "total_p50": percentile([t["total"] for t in timings], 0.5),
            "load": load_average(),
        }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[512, 256, 128])
    parser.add_argument("--answers", type=int, default=4)
    parser.add_argument("--data-dir", default="/tmp/cardrag-bench-memory")
    args = parser.parse_args()
    subprocess.run([sys.executable, "-m", "ingest", "ingest"], check=True, capture_output=True,
                   env={**os.environ, "CARDRAG_DATA_DIR": args.data_dir})  # fmt: skip
    questions = [q.question for q in load_queries(split="dev") if q.primary()][: args.answers]
    rows = []
    for batch_size in args.batch_sizes:
        row = measure(batch_size, questions, args.data_dir)
        print(row, flush=True)
        verdict = "within" if row["peak_mb"] * 2**20 <= TARGET_BYTES else "over"
        rows.append(
            f"| {row['batch']} | {row['start_mb']:,.0f} | {row['peak_mb']:,.0f} "
            f"({row['peak_mb'] * 2**20 / 1e9:.2f} GB, {verdict}) | "
            f"{row['ttft_p50']:.2f} | {row['total_p50']:.2f} | {row['load']} |"
        )
    body = "\n".join([
        "## Serving memory with the bundled LLM (`python -m bench.serving_memory`)",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d}: `cardrag serve` on the shipped corpus, "
        "Qwen2.5-Coder-1.5B Q4_K_M preloaded, real encoder; resident memory after start-up, "
        f"then {len(questions)} streamed answers (/v1/ask, timeout 300 s) and the peak "
        "(VmHWM). "
        "`CARDRAG_LLM__BATCH_SIZE` is llama.cpp's n_batch. Target: 2.5 GB "
        f"({TARGET_BYTES / 2**20:,.0f} MiB).",
        "",
        "| n_batch | RSS after start-up MiB | peak RSS MiB | first token p50 s | answer p50 s "
        "| load avg |",
        "| --- | --- | --- | --- | --- | --- |",
        *rows,
    ])  # fmt: skip
    print(write_section("serving-memory", body))


if __name__ == "__main__":
    main()

"""Answers side by side: cardrag over HTTP (streamed), raw llama.cpp, the naive pipeline.

For each in-corpus question of the eval's dev split, in turn (so a change in the machine's
load hits all three alike):
- cardrag: `cardrag serve` in a child process with the bundled model, POST /v1/ask
  {"stream": true}; time to the first `token` event, to the `answer` event;
- raw: llama-cpp-python's `create_chat_completion(stream=True)` in this process on exactly
  the prompt cardrag built (same cards, same options): the floor cardrag's overhead is
  measured against;
- naive: LlamaIndex `as_query_engine(streaming=True)` over `from_documents` with the same
  encoder and the same model (bench/naive.py).
Raw and naive each get a model of their own, loaded with the server's options (n_ctx,
n_batch, threads, seed). llama.cpp reuses the part of a prompt that matches the previous
one it evaluated, so a model shared between raw and naive re-read the whole system prompt
on every raw question while the server's model, asked by cardrag alone, did not: that
made the raw floor slower than cardrag (session 2's 0.31×), which no overhead can be.
Tokens are counted with the model's tokenizer on the streamed text. Serving RSS is the
server process's peak (VmHWM). Written to docs/BENCHMARKS.md.
Run: .venv/bin/python -m bench.answer_latency [--model NAME] [--answers N]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx

from bench.report import load_average, percentile, write_section
from bench.serving import cardrag_server, free_port, peak_rss_mb
from evals.retrieval import load_queries
from rag.cards import Card
from rag.prompts import build_messages
from rag.settings import Settings


class Timing:
    """First-token and total seconds of one streamed answer, and its text."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.first: float | None = None
        self.text = ""

    def piece(self, text: str) -> None:
        if self.first is None:
            self.first = time.perf_counter() - self.started
        self.text += text

    def done(self) -> dict[str, float | str]:
        return {"ttft": self.first or 0.0, "total": time.perf_counter() - self.started,
                "text": self.text}  # fmt: skip


def sse_events(response: httpx.Response) -> Iterator[tuple[str, str]]:
    event = ""
    for line in response.iter_lines():
        if line.startswith("event:"):
            event = line.removeprefix("event:").strip()
        elif line.startswith("data:"):
            yield event, line.removeprefix("data:").strip()


def ask_cardrag(url: str, question: str) -> tuple[dict, dict]:
    timing = Timing()
    answer: dict = {}
    with httpx.stream("POST", url, json={"question": question, "stream": True}, timeout=300) as r:
        for event, data in sse_events(r):
            if event == "token":
                timing.piece(json.loads(data)["text"])
            elif event == "answer":
                answer = json.loads(data)
    return timing.done(), answer


def ask_raw(model, messages, settings: Settings) -> dict:  # type: ignore[no-untyped-def]
    timing = Timing()
    for chunk in model.create_chat_completion(
        messages=messages, max_tokens=settings.llm.max_tokens,
        temperature=settings.llm.temperature, top_p=0.9, repeat_penalty=1.05, stream=True,
    ):  # fmt: skip
        if piece := chunk["choices"][0]["delta"].get("content"):
            timing.piece(piece)
    return timing.done()


def ask_naive(engine, question: str) -> dict:  # type: ignore[no-untyped-def]
    timing = Timing()
    for piece in engine.query(question).response_gen:
        timing.piece(piece)
    return timing.done()


def prompt_counter(model):  # type: ignore[no-untyped-def]
    """Counts a prompt's tokens as the model's chat template lays them out (the template
    is read and compiled once)."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    template = model.metadata["tokenizer.chat_template"]
    formatter = Jinja2ChatFormatter(template, eos_token="", bos_token="")

    def count(messages: list[dict]) -> int:
        prompt = formatter(messages=messages).prompt
        return len(model.tokenize(prompt.encode(), add_bos=False, special=True))

    return count


def card_of(fields: dict) -> Card:
    return Card(id=fields["card_id"], **{k: fields[k] for k in (
        "question", "short_answer", "long_answer", "topic", "difficulty", "deck")},
        tags=tuple(fields.get("tags") or ()))  # fmt: skip


def summary(rows: list[dict], tokens) -> dict[str, float]:  # type: ignore[no-untyped-def]
    counts = [tokens(r["text"]) for r in rows]
    decode = [n / (r["total"] - r["ttft"]) for n, r in zip(counts, rows, strict=True)
              if r["total"] > r["ttft"] and n > 1]  # fmt: skip
    ttft = [r["ttft"] for r in rows]
    total = [r["total"] for r in rows]
    return {
        "ttft_p50": percentile(ttft, 0.5), "ttft_max": max(ttft),
        "total_p50": percentile(total, 0.5), "total_max": max(total),
        "tokens": statistics.median(counts),
        "tokens_per_s": sum(counts) / sum(total),
        "decode_per_s": statistics.median(decode) if decode else 0.0,
    }  # fmt: skip


GRAMMAR_ROW = "cardrag, citation grammar (HTTP, SSE)"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="qwen2.5-coder-1.5b-instruct")
    parser.add_argument("--answers", type=int, default=8)
    parser.add_argument("--data-dir", default="/tmp/cardrag-bench")
    args = parser.parse_args()
    from bench.naive import LlamaCppLLM, build
    from rag.cards import all_cards, load_corpus
    from rag.components import build_llm
    from rag.embedding import build_embedder

    settings = Settings(data_dir=Path(args.data_dir), llm={"model": args.model})
    env = {"CARDRAG_DATA_DIR": args.data_dir, "CARDRAG_LLM__MODEL": args.model}
    subprocess.run([sys.executable, "-m", "ingest", "ingest"], check=True,
                   env={**os.environ, **env}, capture_output=True)  # fmt: skip
    questions = [q.question for q in load_queries(split="dev") if q.primary()]
    # Each its own model, loaded exactly as the server loads it (rag.components.build_llm).
    model, naive_model = (build_llm(settings).loaded_model() for _ in range(2))
    cards = all_cards(load_corpus(settings.corpus_dir))
    llm = LlamaCppLLM(model=naive_model, max_tokens=settings.llm.max_tokens,
                      temperature=settings.llm.temperature)  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        index = build(cards, build_embedder(settings.embedder, settings.models_dir), Path(tmp))
    engine = index.as_query_engine(llm=llm, streaming=True, similarity_top_k=5)
    port, constrained_port = free_port(), free_port()
    # The citation grammar (CARDRAG_LLM__CITATION_GRAMMAR, off by default) in a server of its
    # own: what constraining every sentence to end in a marker costs in decoding speed.
    constrained_env = {**env, "CARDRAG_LLM__CITATION_GRAMMAR": "true"}
    rows: dict[str, list[dict]] = {"cardrag (HTTP, SSE)": [], GRAMMAR_ROW: [],
                                   "raw llama.cpp": [], "naive LlamaIndex": []}  # fmt: skip
    loads = [load_average()]
    prompt_sizes: list[int] = []
    prompt_tokens = prompt_counter(model)
    with cardrag_server(port, env) as server, cardrag_server(constrained_port, constrained_env):
        url = f"http://127.0.0.1:{port}/v1/ask"
        constrained_url = f"http://127.0.0.1:{constrained_port}/v1/ask"
        # Warm-up without an answer (each costs minutes on a busy machine): the encoder and
        # BM25 through a search; the model is loaded at start-up (preload).
        for warm in (port, constrained_port):
            httpx.get(f"http://127.0.0.1:{warm}/v1/search", params={"q": questions[0]},
                      timeout=300)  # fmt: skip
        ask_raw(model, [{"role": "user", "content": "Hi"}], settings.model_copy(
            update={"llm": settings.llm.model_copy(update={"max_tokens": 16})}))  # fmt: skip
        for question in questions:
            if len(rows["raw llama.cpp"]) >= args.answers:
                break
            timing, answer = ask_cardrag(url, question)
            if answer.get("refused") or answer.get("degraded"):
                continue  # no generation to compare
            rows["cardrag (HTTP, SSE)"].append(timing)
            messages = build_messages(question, [card_of(c) for c in answer["cards"]])
            prompt_sizes.append(prompt_tokens(messages))
            rows["raw llama.cpp"].append(ask_raw(model, messages, settings))
            rows["naive LlamaIndex"].append(ask_naive(engine, question))
            timing, answer = ask_cardrag(constrained_url, question)
            if not answer.get("degraded"):
                rows[GRAMMAR_ROW].append(timing)
            loads.append(load_average())
        serving_rss = peak_rss_mb(server.pid)

    def tokens(text: str) -> int:
        return len(model.tokenize(text.encode(), add_bos=False))

    stats = {name: summary(r, tokens) for name, r in rows.items()}
    raw = stats["raw llama.cpp"]
    lines = []
    for name, s in stats.items():
        lines.append(
            f"| {name} | {s['ttft_p50']:.2f} / {s['ttft_max']:.2f} | "
            f"{s['total_p50']:.2f} / {s['total_max']:.2f} | {s['tokens']:.0f} | "
            f"{s['tokens_per_s']:.1f} | {s['decode_per_s']:.1f} | "
            f"{s['ttft_p50'] / raw['ttft_p50']:.2f}× / {s['total_p50'] / raw['total_p50']:.2f}× |"
        )
    body = "\n".join([
        f"## Answers: cardrag, raw llama.cpp, naive pipeline ({datetime.now(UTC):%Y-%m-%d}, "
        "2 cores shared, `python -m bench.answer_latency`)",
        "",
        f"{len(rows['raw llama.cpp'])} in-corpus dev questions, one after another, each asked "
        f"of the systems in turn. LLM: {args.model} Q4_K_M, llama-cpp-python (portable AVX2 "
        f"build), {settings.llm.threads} threads, max {settings.llm.max_tokens} tokens, "
        f"temperature {settings.llm.temperature}. cardrag streams over HTTP from its own "
        "process; raw and naive run in the benchmark process, each on a `Llama` of its own "
        f"loaded with the server's options (n_batch {settings.llm.batch_size}, n_ctx "
        f"{settings.llm.context_window}), so llama.cpp's reuse of the previous prompt's "
        "prefix (the system prompt) is alike for cardrag and raw. Raw gets the exact prompt "
        "cardrag built (same cards), so its first-token time is the prompt evaluation floor. "
        f"Prompt tokens per question (chat template included): median "
        f"{statistics.median(prompt_sizes):.0f}, min {min(prompt_sizes)}, max "
        f"{max(prompt_sizes)}. The citation-grammar row is a second cardrag server with "
        "`CARDRAG_LLM__CITATION_GRAMMAR=true` (off by default, docs/EVALS.md), on the same "
        "questions; its answers are shorter, so compare its decode rate. Load average over "
        "the run: " + ", ".join(loads) + ".",
        "",
        "| system | first token p50 / max s | total p50 / max s | answer tokens (median) | "
        "tokens/s (all tokens / all time) | decode tokens/s (median) | vs raw: first token / "
        "total (p50) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        *lines,
        "",
        f"Serving RSS (peak of `cardrag serve` with the model loaded, after the run): "
        f"{serving_rss:.0f} MB (target ≤ 2,500 MB). Target first token ≤ 1.5 s.",
    ])  # fmt: skip
    print(write_section("answer-latency", body))


if __name__ == "__main__":
    main()

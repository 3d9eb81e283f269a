"""How long /v1/ask takes to answer when the LLM backend is broken, in docs/BENCHMARKS.md.

Target (issue 4): a degraded answer within CARDRAG_LLM__TIMEOUT + 1 s. The service runs
with the OpenAI-compatible backend pointed at three broken servers on loopback: one that
accepts the connection and never answers, one that refuses connections, one that answers
with malformed JSON. Real encoder and Chroma; requests go through the ASGI app in process.
Run: .venv/bin/python -m bench.degraded_latency [--timeout 2] [--requests 5]
"""

import argparse
import socket
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from fastapi.testclient import TestClient

from api.app import create_app
from bench.report import percentile, write_section
from rag.components import build_indexed
from rag.embedding import build_embedder
from rag.settings import Settings

QUESTION = {"question": "Why do transformers use LayerNorm rather than BatchNorm?"}


def hanging_server() -> int:
    """Accepts connections and reads, never answers."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            connection, _ = listener.accept()
            held.append(connection)

    threading.Thread(target=accept, daemon=True).start()
    return listener.getsockname()[1]


def refusing_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed again: connections are refused


class _Malformed(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        self.rfile.read(int(self.headers.get("content-length", 0)))
        body = b'{"choices": [{"message": {"content": '
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def malformed_server() -> int:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Malformed)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server.server_address[1]


def measure(  # type: ignore[no-untyped-def]
    port: int, timeout: float, requests: int, data_dir: Path, stream: bool, embedder
) -> list[float]:
    settings = Settings(
        data_dir=data_dir,
        llm={"backend": "openai", "base_url": f"http://127.0.0.1:{port}/v1", "model": "x",
             "timeout": timeout, "preload": False},
    )  # fmt: skip
    components = build_indexed(settings, embedder=embedder)
    seconds = []
    with TestClient(create_app(settings, components)) as client:
        client.get("/v1/search", params={"q": QUESTION["question"]})  # warm the encoder, BM25
        for _ in range(requests):
            started = time.perf_counter()
            response = client.post("/v1/ask", json={**QUESTION, "stream": stream})
            seconds.append(time.perf_counter() - started)
            assert response.status_code == 200, response.text
            assert '"degraded":true' in response.text.replace(" ", ""), response.text[:300]
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--timeout", type=float, default=2.0)
    parser.add_argument("--requests", type=int, default=5)
    parser.add_argument("--data-dir", default="/tmp/cardrag-bench-degraded")
    args = parser.parse_args()
    faults = {"hangs": hanging_server(), "refuses connections": refusing_port(),
              "malformed JSON": malformed_server()}  # fmt: skip
    settings = Settings()
    embedder = build_embedder(settings.embedder, settings.models_dir)  # once for the six runs
    rows = []
    for fault, port in faults.items():
        for stream in (False, True):
            times = measure(port, args.timeout, args.requests, Path(args.data_dir), stream,
                            embedder)  # fmt: skip
            rows.append(f"| {fault} | {'SSE' if stream else 'JSON'} | {len(times)} | "
                        f"{percentile(times, 0.5):.2f} | {max(times):.2f} |")  # fmt: skip
    body = "\n".join([
        "## Degraded answers (LLM backend broken)",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d} with `python -m bench.degraded_latency`: "
        f"CARDRAG_LLM__TIMEOUT={args.timeout:g} s, OpenAI-compatible backend pointed at a "
        "broken server, real encoder, every response 200 with `degraded: true`. "
        f"Target: within timeout + 1 s = {args.timeout + 1:g} s.",
        "",
        "| backend fault | response | requests | p50 s | max s |",
        "| --- | --- | --- | --- | --- |",
        *rows,
    ])
    print(write_section("degraded", body))


if __name__ == "__main__":
    main()

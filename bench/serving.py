"""Servers in child processes and a bounded HTTP load, for the benchmarks that go over HTTP.

The load runs in the benchmark's own process (a second process beside the server) on
loopback: an asyncio loop of httpx clients, each sending its next request when the last
one returned. Locust would do the same with more moving parts; a closed loop with a fixed
number of clients is exactly the "N concurrent clients" the targets are written in.
"""

import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from rag.settings import REPO_ROOT


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(url: str, process: subprocess.Popen, seconds: float = 600) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args} exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"nothing answered at {url} within {seconds:.0f} s")


@contextmanager
def running(
    command: Sequence[str], health_url: str, env: Mapping[str, str] | None = None
) -> Iterator[subprocess.Popen]:
    """Start a server process (its own process group), wait for its health URL, stop it."""
    log = tempfile.NamedTemporaryFile("w", prefix="cardrag-bench-", suffix=".log", delete=False)
    process = subprocess.Popen(
        list(command), cwd=REPO_ROOT, env={**os.environ, **(env or {})},
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        try:
            wait_until_up(health_url, process)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}; server log: {log.name}") from exc
        yield process
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


# A benchmark client sends hundreds of requests a minute from one address: the per-client
# rate limit (120/minute by default) would turn most of them into 429s.
UNLIMITED = {"CARDRAG_SECURITY__RATE_LIMIT_ENABLED": "false"}
# Every search returns its k cards: hashing-embedded card vectors score below the relevance
# floor against real query vectors, and an empty response would flatter the latency.
SEARCH_PARAMS = {"k": 5, "min_score": -1}


def cardrag_server(port: int, env: Mapping[str, str], workers: int = 1):  # type: ignore[no-untyped-def]
    """`cardrag serve` (python -m ingest serve) configured through CARDRAG_* variables."""
    command = [sys.executable, "-m", "ingest", "serve", "--host", "127.0.0.1",
               "--port", str(port), "--workers", str(workers)]  # fmt: skip
    return running(command, f"http://127.0.0.1:{port}/healthz", {**UNLIMITED, **env})


def chroma_server(port: int, path: Path):  # type: ignore[no-untyped-def]
    command = [str(Path(sys.executable).with_name("chroma")), "run", "--path", str(path),
               "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip
    return running(command, f"http://127.0.0.1:{port}/api/v2/heartbeat")


def peak_rss_mb(pid: int) -> float:
    """Peak resident memory (VmHWM) of a process and its children, e.g. uvicorn workers."""
    total = 0.0
    pids = [pid, *_children(pid)]
    for each in pids:
        try:
            status = Path(f"/proc/{each}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                total += int(line.split()[1]) / 1024
    return total


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its children so far. With other jobs on the
    same cores, wall-clock latency mostly measures the wait for a core; CPU time per
    request is what the work itself costs."""
    total = 0.0
    for each in [pid, *_children(pid)]:
        try:
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        children = (task / "children").read_text().split() if (task / "children").exists() else []
        for child in map(int, children):
            found += [child, *_children(child)]
    return found


@dataclass(frozen=True)
class LoadResult:
    latencies_ms: list[float]
    seconds: float
    errors: int

    @property
    def rps(self) -> float:
        return len(self.latencies_ms) / self.seconds if self.seconds else 0.0


async def _load(url: str, params: Sequence[Mapping[str, object]], clients: int) -> LoadResult:
    queue: asyncio.Queue[Mapping[str, object]] = asyncio.Queue()
    for item in params:
        queue.put_nowait(item)
    latencies: list[float] = []
    errors = 0

    async def client(http: httpx.AsyncClient) -> None:
        nonlocal errors
        while not queue.empty():
            item = queue.get_nowait()
            started = time.perf_counter()
            response = await http.get(url, params=item)
            if response.status_code == 200:
                latencies.append((time.perf_counter() - started) * 1000)
            else:
                errors += 1

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=120, limits=limits) as http:
        started = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(clients)))
        seconds = time.perf_counter() - started
    if not latencies:
        raise RuntimeError(f"all {errors} requests to {url} failed")
    return LoadResult(latencies, seconds, errors)


def load(url: str, params: Sequence[Mapping[str, object]], clients: int) -> LoadResult:
    """Send every request in `params`, `clients` at a time (a closed loop), on keep-alive."""
    return asyncio.run(_load(url, params, clients))

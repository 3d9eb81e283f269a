"""Shared by the benchmarks: percentiles and writing one marked section of BENCHMARKS.md."""

import os

from rag.settings import REPO_ROOT

REPORT = REPO_ROOT / "docs" / "BENCHMARKS.md"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def load_average() -> str:
    """The 1-minute load average: other jobs share these 2 cores, so every number is
    reported next to how busy the machine was while it was measured."""
    return f"{os.getloadavg()[0]:.1f}"


def write_section(name: str, body: str) -> str:
    """Replace (or append) the section between this benchmark's markers; return it."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    section = f"{start}\n{body.strip()}\n{end}"
    text = REPORT.read_text() if REPORT.exists() else "# Benchmarks\n"
    if start in text:
        text = text[: text.index(start)] + section + text[text.index(end) + len(end):]
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    REPORT.write_text(text)
    return section

"""Shared by the benchmarks: percentiles and writing one marked section of BENCHMARKS.md."""

from rag.settings import REPO_ROOT

REPORT = REPO_ROOT / "docs" / "BENCHMARKS.md"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


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

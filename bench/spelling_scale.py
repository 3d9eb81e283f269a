"""The spelling corrector's build time, memory and look-up time against the size of the
cards' vocabulary, for symspellpy prefix lengths 7 and 5; and whether the two prefix lengths
ever correct a query differently.

The shipped corpus has 3,142 distinct words, but an imported deck of 10k diverse cards can
have tens of thousands, and symspellpy's index of deletes grows with them. Synthetic
vocabularies add seeded pseudo-words (5-12 random letters) to the shipped cards; each size
and prefix length is built in a fresh process, whose resident memory is read before and
after the build (/proc/self/status). Queries: the eval's retrieval and out-of-corpus
questions, the card questions with seeded typos, and seeded typos of the pseudo-words.
Written to docs/BENCHMARKS.md. Run: .venv/bin/python -m bench.spelling_scale
"""

import json
import random
import re
import string
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.report import load_average, write_section
from rag.cards import Card, all_cards, load_corpus
from rag.settings import REPO_ROOT
from rag.spelling import PREFIX_LENGTH

SIZES = (0, 20_000, 100_000)  # pseudo-words added to the shipped cards' vocabulary
PREFIX_LENGTHS = (7, 5)
WORDS_PER_CARD = 200
TYPO_QUERIES = 500
EVAL_FILES = ("retrieval.jsonl", "out_of_corpus.jsonl")


def pseudo_words(count: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    found: set[str] = set()
    while len(found) < count:
        found.add("".join(rng.choices(string.ascii_lowercase, k=rng.randint(5, 12))))
    return sorted(found)


def typo(word: str, rng: random.Random) -> str:
    """One seeded edit: a deletion, substitution, insertion or transposition."""
    i = rng.randrange(1, len(word) - 1)
    match rng.choice("dsit"):
        case "d":
            return word[:i] + word[i + 1 :]
        case "s":
            return word[:i] + rng.choice(string.ascii_lowercase) + word[i + 1 :]
        case "i":
            return word[:i] + rng.choice(string.ascii_lowercase) + word[i:]
        case _:
            return word[: i - 1] + word[i] + word[i - 1] + word[i + 1 :]


def typo_question(question: str, rng: random.Random) -> str:
    """Up to two words of four letters or more get one typo each."""
    words = question.split()
    long_words = [i for i, w in enumerate(words) if len(w) >= 4 and w.isalpha()]
    for i in rng.sample(long_words, min(2, len(long_words))):
        words[i] = typo(words[i], rng)
    return " ".join(words)


def synthetic_cards(extra: int) -> list[Card]:
    words = pseudo_words(extra)
    return [
        Card(id=f"synthetic-{n}", question=f"What is {chunk[0]}?", difficulty="easy",
             topic="synthetic", short_answer=chunk[0], long_answer=" ".join(chunk))
        for n, chunk in enumerate(
            words[i : i + WORDS_PER_CARD] for i in range(0, len(words), WORDS_PER_CARD)
        )
    ]  # fmt: skip


def queries(extra: int) -> list[str]:
    rng = random.Random(1)
    cards = all_cards(load_corpus(REPO_ROOT / "corpus"))
    asked = [
        json.loads(line)["question"]
        for name in EVAL_FILES
        for line in (REPO_ROOT / "evals" / "data" / name).read_text().splitlines()
        if line.strip()
    ]
    asked += [typo_question(card.question, rng) for card in cards]
    if extra:
        asked += [typo(w, rng) for w in rng.sample(pseudo_words(extra), TYPO_QUERIES)]
    return asked


def resident_mb() -> float:
    status = Path("/proc/self/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024  # type: ignore[union-attr]


def worker(extra: int, prefix_length: int) -> dict:
    """One build in this process: what the parent reports for (extra, prefix_length)."""
    import rag.spelling

    cards = all_cards(load_corpus(REPO_ROOT / "corpus")) + synthetic_cards(extra)
    asked = queries(extra)
    rag.spelling._english_stems()  # once per process whatever the size: not counted
    before = resident_mb()
    started = time.perf_counter()
    speller = rag.spelling.SpellingCorrector(cards, prefix_length=prefix_length)
    build_s = time.perf_counter() - started
    grown = resident_mb() - before
    started = time.perf_counter()
    corrected = [speller.correct(q) for q in asked]
    lookup_ms = (time.perf_counter() - started) * 1000 / len(asked)
    return {"vocabulary": len(speller.vocabulary), "build_s": build_s, "memory_mb": grown,
            "lookup_ms": lookup_ms, "corrected": corrected,
            "changed": sum(c != q for c, q in zip(corrected, asked, strict=True))}  # fmt: skip


def run(extra: int, prefix_length: int) -> dict:
    command = [sys.executable, "-m", "bench.spelling_scale", "--worker", str(extra),
               str(prefix_length)]  # fmt: skip
    out = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def main() -> None:
    rows = []
    for extra in SIZES:
        results = {p: run(extra, p) for p in PREFIX_LENGTHS}
        pairs = zip(results[7]["corrected"], results[5]["corrected"], strict=True)
        differ = sum(a != b for a, b in pairs)
        for p, r in results.items():
            rows.append(f"| {r['vocabulary']:,} | {p} | {r['build_s']:.2f} | "
                        f"{r['memory_mb']:.0f} | {r['lookup_ms']:.3f} | "
                        f"{len(r['corrected'])} | {r['changed']} | "
                        f"{differ if p != 7 else '–'} |")  # fmt: skip
    body = "\n".join([
        f"## Spelling corrector vs vocabulary size ({datetime.now(UTC):%Y-%m-%d}, "
        "`python -m bench.spelling_scale`)",
        "",
        "rag.spelling's symspellpy index over the shipped cards' words plus seeded "
        "pseudo-words (5-12 letters), built in a fresh process per row; *memory* is the "
        "growth of the process's resident memory over the build. Queries: the 289 retrieval "
        "and 63 out-of-corpus eval questions, the 127 card questions with seeded typos, and "
        f"{TYPO_QUERIES} seeded typos of pseudo-words where there are any; *differ from 7*: "
        "queries that prefix lengths 7 and 5 correct differently (a typo with two "
        "candidates equally near and equally frequent is a tie either may break). "
        f"cardrag uses {PREFIX_LENGTH} (rag.spelling.PREFIX_LENGTH; symspellpy's default is 7). "
        f"Load average after the run: {load_average()}.",
        "",
        "| distinct words | prefix length | build s | memory MB | look-up ms / query | "
        "queries | queries changed | differ from 7 |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
        *rows,
    ])  # fmt: skip
    print(write_section("spelling-scale", body))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        print(json.dumps(worker(int(sys.argv[2]), int(sys.argv[3]))))
    else:
        main()

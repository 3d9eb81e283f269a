"""Crash-safe ingestion and readers during ingests (issue 6, "Hardening").

- The kill test: `cardrag ingest` is killed with SIGKILL at varying points of a sync, again
  and again (`--kill-reps`, 12 by default). After every kill the index a server serves
  answers searches and holds exactly the old card set or exactly the new one (ids and
  content, no duplicates, nothing lost); a final run completes the work.
- Searches in threads while ingests run in another process, or in a thread: no errors.
- A running app follows an ingest made by another process.

The corpora are generated (400 and 420 cards, 100 of them changed) so that a sync has
work in it to be killed. Ingests run in children forked from ingest_zygote.py, which has
done cardrag's imports once (they cost seconds of CPU per process); one test kills a plain
`python -m ingest ingest` as well.
"""

import json
import os
import random
import signal
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import pytest
import yaml

from api.app import create_app
from rag.cards import Card, all_cards, load_corpus
from rag.components import Components, build_components
from rag.published import read_published
from rag.settings import REPO_ROOT
from rag.testing import FakeLLM, HashingEmbedding
from tests.conftest import make_settings

ZYGOTE = Path(__file__).with_name("ingest_zygote.py")
SYLLABLES = ["ka", "lo", "mi", "nu", "pe", "ra", "si", "to", "vu", "ze", "bi", "do", "fa", "gu"]


# ---------------------------------------------------------------- corpora


def _words(rng: random.Random, n: int) -> str:
    return " ".join(
        "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))) for _ in range(n)
    )


def _card(rng: random.Random, number: int) -> dict:
    return {
        "id": f"card-{number:04d}",
        "question": _words(rng, 8) + "?",
        "difficulty": rng.choice(["easy", "medium", "hard"]),
        "topic": f"topic-{number % 4}",
        "tags": [f"tag-{number % 7}"],
        "short_answer": _words(rng, 12),
        "long_answer": _words(rng, 40),
    }


def write_corpus(directory: Path, cards: list[dict]) -> list[Card]:
    """Four deck files; returns the cards as the loader reads them back."""
    directory.mkdir(parents=True)
    for deck in range(4):
        chunk = [card for card in cards if int(card["id"][-4:]) % 4 == deck]
        header = {"id": f"deck-{deck}", "title": f"Generated deck {deck}"}
        text = yaml.safe_dump({"deck": header, "cards": chunk}, sort_keys=False)
        (directory / f"deck-{deck}.yaml").write_text(text)
    return all_cards(load_corpus(directory))


@pytest.fixture(scope="module")
def corpora(tmp_path_factory) -> dict[str, tuple[Path, list[Card]]]:
    """old: 400 cards; new: 40 of them removed, 60 edited, 60 added (420 cards)."""
    rng = random.Random(6)
    old = [_card(rng, n) for n in range(400)]
    new = [dict(card) for card in old if int(card["id"][-4:]) >= 40]
    for card in new[:60]:
        card["short_answer"] = _words(rng, 12)
    new += [_card(rng, n) for n in range(400, 460)]
    root = tmp_path_factory.mktemp("corpora")
    return {
        "old": (root / "old", write_corpus(root / "old", old)),
        "new": (root / "new", write_corpus(root / "new", new)),
    }


# ---------------------------------------------------------------- ingest processes


class IngestProcesses:
    """`cardrag ingest` in children forked from ingest_zygote.py (see its protocol)."""

    def __init__(self, cwd: Path):
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        self.proc = subprocess.Popen(
            [sys.executable, str(ZYGOTE)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, bufsize=1, env=env, cwd=cwd,
        )  # fmt: skip
        assert self.proc.stdout.readline().strip() == "ready", self.proc.stderr.read()
        self._done = False

    def start(self, data_dir: Path, corpus: Path) -> int:
        env = f"CARDRAG_DATA_DIR={data_dir} CARDRAG_EMBEDDER__BACKEND=hashing " \
              "CARDRAG_LLM__BACKEND=fake"  # fmt: skip
        self.proc.stdin.write(f"{env} ingest -v --json --corpus {corpus}\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line.startswith("pid "), line
        self._done = False
        return int(line.split()[1])

    def read_steps(self, count: int) -> list[str]:
        """Wait for the child's next `count` step lines (fewer if it ends first)."""
        steps: list[str] = []
        while len(steps) < count and not self._done:
            line = self.proc.stderr.readline().rstrip("\n")
            self._done = line == "--- done"
            if not self._done:
                steps.append(line)
        return steps

    def finish(self) -> tuple[int, list[str], list[str]]:
        """Exit code (-9 when killed), stdout lines and the remaining stderr lines."""
        out = []
        while not (line := self.proc.stdout.readline()).startswith("exit "):
            out.append(line.rstrip("\n"))
        code = int(line.split()[1])
        rest = self.read_steps(10_000)
        return code, out, rest

    def run(self, data_dir: Path, corpus: Path) -> dict:
        self.start(data_dir, corpus)
        code, out, err = self.finish()
        assert code == 0, err
        return json.loads(out[-1])

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


@pytest.fixture(scope="module")
def ingests(tmp_path_factory):
    processes = IngestProcesses(tmp_path_factory.mktemp("zygote"))
    yield processes
    processes.close()


def reader(data_dir: Path) -> Components:
    """What `cardrag serve` builds: opens the index read-only and follows the pointer."""
    settings = make_settings(data_dir.parent, data_dir=data_dir)
    return build_components(settings, llm=FakeLLM(), embedder=HashingEmbedding())


def served_set(server: Components, corpora: dict) -> str:
    """Which corpus the server serves, checked exactly: ids without duplicates, every
    card's content, the pointer's count, and searches that find cards."""
    ids = server.store.card_ids()
    assert len(ids) == len(set(ids)) == server.store.count()
    matches = [name for name, (_, cards) in corpora.items()
               if ids == sorted(card.id for card in cards)]  # fmt: skip
    assert len(matches) == 1, f"served {len(ids)} cards: neither the old nor the new set"
    expected = {card.id: card for card in corpora[matches[0]][1]}
    assert {card.id: card for card in server.store.all_cards()} == expected  # not a mix
    assert read_published(server.settings.data_dir).cards == len(ids)
    for card in random.Random(len(ids)).sample(list(expected.values()), 3):
        hits = server.retriever.search(card.question, 5)
        assert card.id in {hit.card.id for hit in hits}
    return matches[0]


def leftovers(server: Components) -> set[str]:
    published = read_published(server.settings.data_dir)
    names = {c.name for c in server.store.client.list_collections()}
    return names - {published.collection, published.previous}


# ---------------------------------------------------------------- the kill test


def test_ingest_killed_at_any_point_leaves_the_served_index_intact(
    tmp_path, corpora, ingests, request
):
    reps = request.config.getoption("--kill-reps")
    data_dir = tmp_path / "data"
    server = reader(data_dir)  # one long-lived reader across all kills, like a server
    ingests.run(data_dir, corpora["old"][0])
    served, target = served_set(server, corpora), "new"
    rng = random.Random(reps)
    outcomes: Counter[str] = Counter()
    for rep in range(reps):
        after_steps = rep % 8  # 0: during start-up; k: right after the k-th step it reports
        pid = ingests.start(data_dir, corpora[target][0])
        steps = ingests.read_steps(after_steps)
        threading.Event().wait(rng.uniform(0, 0.3 if after_steps == 0 else 0.05))
        os.kill(pid, signal.SIGKILL)
        code, _, more = ingests.finish()
        now = served_set(server, corpora)  # the check that matters, after every kill
        assert now in (served, target)
        outcome = "published" if now == target and now != served else "kept"
        outcomes[f"{outcome}{' (mid-build)' if leftovers(server) else ''}"] += 1
        outcomes["killed" if code == -signal.SIGKILL else "finished first"] += 1
        last = (steps + more)[-1:] if code != -signal.SIGKILL else steps[-1:]
        outcomes[f"last step: {last[0].split()[0] if last else 'none'}"] += 1
        served = now
        if served == target:
            target = "old" if target == "new" else "new"
    print(f"\nkill test, {reps} repetitions: {dict(sorted(outcomes.items()))}")
    if reps >= 8:  # every kill point was used: both outcomes must have happened
        assert outcomes["kept (mid-build)"] >= 1 and outcomes["killed"] >= reps // 2
        assert outcomes["published"] + outcomes["published (mid-build)"] >= 1
    # The next run completes the work, and one more changes nothing and embeds nothing.
    ingests.run(data_dir, corpora[target][0])
    assert served_set(server, corpora) == target
    again = ingests.run(data_dir, corpora[target][0])
    assert (again["added"], again["updated"], again["removed"]) == (0, 0, 0)
    assert again["unchanged"] == len(corpora[target][1])
    assert leftovers(server) == set()


def test_the_real_cli_killed_mid_sync_leaves_the_index_intact(tmp_path, corpora):
    """The same, once, with a plain `python -m ingest ingest` process."""
    data_dir = tmp_path / "data"
    server = reader(data_dir)
    server.indexer.sync(corpora["old"][1])
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "CARDRAG_DATA_DIR": str(data_dir),
           "CARDRAG_EMBEDDER__BACKEND": "hashing", "CARDRAG_LLM__BACKEND": "fake"}  # fmt: skip
    cli = subprocess.Popen(
        [sys.executable, "-m", "ingest", "ingest", "-v", "--corpus", str(corpora["new"][0])],
        stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path,
    )  # fmt: skip
    for line in cli.stderr:
        if line.startswith("embedding"):
            cli.send_signal(signal.SIGKILL)
            break
    assert cli.wait(timeout=600) == -signal.SIGKILL
    assert served_set(server, corpora) == "old" and leftovers(server)
    server.indexer.sync(corpora["new"][1])
    assert served_set(server, corpora) == "new" and not leftovers(server)


# ---------------------------------------------------------------- readers during ingests


@pytest.mark.parametrize("writer", ["process", "thread"])
def test_searches_during_ingests_see_no_errors(tmp_path, corpora, ingests, writer):
    data_dir = tmp_path / "data"
    server = reader(data_dir)
    server.indexer.sync(corpora["old"][1])
    every = {card.id: card for _, cards in corpora.values() for card in cards}
    cards = list(every.values())
    stop, writing = threading.Event(), threading.Event()
    errors: list[str] = []
    seen: set[str] = set()
    during = Counter()

    def search(seed: int) -> None:
        rng = random.Random(seed)
        while not stop.is_set():
            card = rng.choice(cards)
            try:
                hits = server.retriever.search(card.question, 5)
                assert {hit.card.id for hit in hits} <= set(every)
                server.store.get_card(card.id)
                if rng.random() < 0.2:
                    server.answerer.ask(card.question)
                seen.add(server.store.current().name)
                during[writing.is_set()] += 1
            except Exception as exc:  # every error counts; the assertion shows them
                errors.append(repr(exc))

    threads = [threading.Thread(target=search, args=(seed,)) for seed in range(3)]
    for thread in threads:
        thread.start()
    other = reader(data_dir) if writer == "thread" else None
    try:
        for target in ("new", "old"):
            writing.set()
            if other is not None:
                other.indexer.sync(corpora[target][1])
            else:
                ingests.run(data_dir, corpora[target][0])
            writing.clear()
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    print(f"\n{writer} writer: {during[True]} searches during ingests, "
          f"{during[False]} between, generations seen: {sorted(seen)}")  # fmt: skip
    assert errors == []
    assert during[True] > 0 and len(seen) >= 2
    assert served_set(server, corpora) == "old"


def test_a_running_app_follows_an_ingest_made_by_another_process(tmp_path, corpora, ingests):
    from fastapi.testclient import TestClient

    data_dir = tmp_path / "data"
    server = reader(data_dir)
    server.indexer.sync(corpora["old"][1])
    added = next(c for c in corpora["new"][1] if c.id not in {o.id for o in corpora["old"][1]})
    with TestClient(create_app(server.settings, server)) as client:
        assert client.get("/healthz").json()["cards"] == 400
        ingests.run(data_dir, corpora["new"][0])
        assert client.get("/healthz").json()["cards"] == 420
        assert client.get("/v1/cards/card-0000").status_code == 404
        assert client.get(f"/v1/cards/{added.id}").json()["question"] == added.question
        found = client.get("/v1/search", params={"q": added.question, "min_score": -1}).json()
        assert added.id in {result["card_id"] for result in found["results"]}

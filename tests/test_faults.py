"""Faults at start-up and a second writer (issue 6, "Hardening").

An unreadable or damaged index makes `ingest`, `search` and `serve` print one line naming
what is wrong and exit 1, and nothing on disk changes (every file's bytes and mtime are
compared). The app's start-up fails the same way. A second writer is refused at once with
one line, and a writer killed with SIGKILL leaves no lock behind.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from rag.errors import IndexBusy, IndexUnavailable
from rag.lock import writer_lock
from rag.settings import REPO_ROOT
from rag.store import unavailable
from tests.api.test_decks_quiz_api import CSV, upload
from tests.conftest import make_settings
from tests.test_cli import env, run  # noqa: F401  (env is a fixture)

NOBODY = 65534


@pytest.fixture
def data_dir(env) -> Path:  # noqa: F811
    assert run("ingest").exit_code == 0
    return Path(os.environ["CARDRAG_DATA_DIR"])


def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    return {
        str(path.relative_to(root)): (path.read_bytes(), path.stat().st_mtime_ns)
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def garbage_database(data_dir: Path) -> None:
    database = data_dir / "chroma" / "chroma.sqlite3"
    database.write_bytes(os.urandom(database.stat().st_size))


def garbage_inside_database(data_dir: Path) -> None:
    """The header is intact, pages in the middle are not: Chroma would open this one."""
    database = data_dir / "chroma" / "chroma.sqlite3"
    with open(database, "r+b") as out:
        out.seek(database.stat().st_size // 3)
        out.write(os.urandom(20_000))


def truncated_database(data_dir: Path) -> None:
    database = data_dir / "chroma" / "chroma.sqlite3"
    os.truncate(database, database.stat().st_size // 2)


def chroma_path_is_a_file(data_dir: Path) -> None:
    for path in sorted((data_dir / "chroma").rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()
    (data_dir / "chroma").rmdir()
    (data_dir / "chroma").write_text("not a directory")


def garbage_pointer(data_dir: Path) -> None:
    (data_dir / "active.json").write_text('{"collection": ')


def pointer_to_a_missing_collection(data_dir: Path) -> None:
    pointer = json.loads((data_dir / "active.json").read_text())
    (data_dir / "active.json").write_text(json.dumps({**pointer, "collection": "cards-g000099"}))


DAMAGE = {
    "garbage database": (garbage_database, "chroma"),
    "garbage inside the database": (garbage_inside_database, "chroma"),
    "truncated database": (truncated_database, "chroma"),
    "chroma path is a file": (chroma_path_is_a_file, "chroma"),
    "garbage pointer": (garbage_pointer, "active.json"),
    "pointer to a missing collection": (pointer_to_a_missing_collection, "active.json"),
}


@pytest.fixture
def no_server(monkeypatch):
    """`serve` must fail before uvicorn starts; if it did not, the test must not hang."""
    monkeypatch.setattr("uvicorn.run", lambda *a, **k: pytest.fail("uvicorn started"))


@pytest.mark.parametrize("damage", DAMAGE)
@pytest.mark.parametrize("command", [("ingest",), ("search", "dropout"), ("serve",)])
def test_a_damaged_index_is_one_clear_line_and_nothing_changes(
    data_dir, damage, command, no_server
):
    make_damage, named = DAMAGE[damage]
    make_damage(data_dir)
    before = snapshot(data_dir)
    result = run(*command)
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert str(data_dir / named) in lines[0] and "Traceback" not in result.output
    assert snapshot(data_dir) == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a chmod 000 directory anyway")
@pytest.mark.parametrize("command", [("ingest",), ("search", "dropout"), ("serve",)])
def test_an_unreadable_index_is_one_clear_line_and_nothing_changes(
    data_dir, command, no_server
):
    chroma = data_dir / "chroma"
    before = snapshot(data_dir)
    chroma.chmod(0)
    try:
        result = run(*command)
    finally:
        chroma.chmod(0o755)
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: {chroma}") and result.stderr.count("\n") == 1
    assert snapshot(data_dir) == before


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"),
                    reason="root runs the CLI as an unprivileged user with setpriv")  # fmt: skip
@pytest.mark.parametrize("command", [("ingest",), ("search", "dropout"), ("serve",)])
def test_an_unreadable_index_is_one_clear_line_for_an_unprivileged_user(data_dir, command):
    """The test above as CI (root) can run it: the CLI runs as `nobody` in its own process,
    on a copy of the index that `nobody` owns, so chmod 000 really denies it."""
    base = Path(tempfile.mkdtemp(prefix="cardrag-unreadable-"))
    try:
        base.chmod(0o755)
        data = base / "data"
        shutil.copytree(data_dir, data)
        for path in [data, *data.rglob("*")]:
            os.chown(path, NOBODY, NOBODY)
        before = snapshot(data)
        chroma = data / "chroma"
        chroma.chmod(0)
        as_nobody = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
        env = {**os.environ, "HOME": str(base), "CARDRAG_DATA_DIR": str(data),
               "CARDRAG_CORPUS_DIR": str(REPO_ROOT / "corpus")}  # fmt: skip
        result = subprocess.run([*as_nobody, sys.executable, "-m", "ingest", *command],
                                cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                                timeout=300)  # fmt: skip
        chroma.chmod(0o755)
        assert result.returncode == 1, result.stderr
        assert result.stderr.startswith(f"error: {chroma}"), result.stderr
        assert result.stderr.count("\n") == 1, result.stderr
        assert snapshot(data) == before
    finally:
        shutil.rmtree(base)


def test_the_app_start_up_fails_fast_with_the_same_message(tmp_path):
    settings = make_settings(tmp_path)
    settings.data_dir.mkdir()
    (settings.data_dir / "chroma").write_text("not a directory")
    with pytest.raises(IndexUnavailable, match="cannot open the Chroma index"):
        with TestClient(create_app(settings)):
            pass


# ---------------------------------------------------------------- one writer


def test_a_second_writer_gets_one_line_and_exit_1(data_dir):
    with writer_lock(data_dir):
        result = run("ingest")
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: {data_dir}: another ingest is writing to this data directory (process "
        f"{os.getpid()} holds {data_dir / 'ingest.lock'}); wait for it to finish\n"
    )
    assert run("ingest").exit_code == 0  # released


def test_a_killed_writer_leaves_no_lock_behind(data_dir):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; "
         "from rag.lock import writer_lock\n"
         "with writer_lock(Path(sys.argv[1])):\n    print('locked', flush=True); time.sleep(600)",
         str(data_dir)],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "locked"
        busy = run("ingest")
        assert busy.exit_code == 1 and f"process {holder.pid} holds" in busy.stderr
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert run("ingest").exit_code == 0


def test_a_deck_import_while_another_writer_works_is_a_409_and_changes_nothing(
    client, settings
):
    count = client.get("/healthz").json()["cards"]
    with writer_lock(settings.data_dir):
        response = upload(client, CSV.encode())
    assert response.status_code == 409
    detail = response.json()["detail"]
    assert "being updated by another ingest" in detail
    assert str(settings.data_dir) not in detail  # the lock's path stays in the log
    assert client.get("/healthz").json()["cards"] == count
    assert "hardware" not in {d["deck"] for d in client.get("/v1/decks").json()["decks"]}
    assert not list((settings.data_dir / "decks").glob("*.yaml"))
    assert upload(client, CSV.encode()).status_code == 200  # released


def test_the_writer_lock_is_held_from_reading_the_card_set_to_publishing(settings):
    """`cardrag ingest` and deck imports read their cards inside `writing()`: nothing
    another writer publishes can fall between their read and their sync."""
    from rag.cards import all_cards, load_corpus
    from rag.components import build_components
    from rag.testing import HashingEmbedding

    first = build_components(settings, embedder=HashingEmbedding())
    second = build_components(settings, embedder=HashingEmbedding())
    cards = all_cards(load_corpus(settings.corpus_dir))
    with first.indexer.writing():
        with pytest.raises(IndexBusy):
            second.indexer.sync(cards)
        assert first.indexer.sync(cards).added == len(cards)  # re-entrant for its holder
    assert second.indexer.sync(cards).unchanged == len(cards)


# ---------------------------------------------------------------- a read-only index


@pytest.mark.parametrize("reason", [
    "error returned from database: (code: 8) attempt to write a readonly database",
    "error returned from database: (code: 14) unable to open database file",
    "[Errno 13] Permission denied: 'chroma.sqlite3'",
])  # fmt: skip
def test_a_read_only_index_gets_advice_on_permissions_not_repair(reason):
    message = str(unavailable(Path("/srv/data/chroma"), reason))
    assert "may not write to it" in message and "chattr -i" in message
    assert "Restore it" not in message and "rebuild" not in message
    damaged = str(unavailable(Path("/srv/data/chroma"), "database disk image is malformed"))
    assert "Restore it from a backup" in damaged


def test_an_immutable_database_is_one_line_about_permissions(data_dir):
    database = data_dir / "chroma" / "chroma.sqlite3"
    if subprocess.run(["chattr", "+i", str(database)], capture_output=True).returncode != 0:
        pytest.skip("chattr +i is not available here (needs root on a file system with it)")
    try:  # another process: this one's Chroma client is open already, and kept per path
        command = [sys.executable, "-m", "ingest", "search", "dropout"]
        result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True,
                                timeout=300)  # fmt: skip
    finally:
        subprocess.run(["chattr", "-i", str(database)], check=True)
    assert result.returncode == 1 and result.stderr.count("\n") == 1, result.stderr
    assert "readonly database" in result.stderr and "may not write to it" in result.stderr

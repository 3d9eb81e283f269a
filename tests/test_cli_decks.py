"""The CLI's deck and quiz commands end to end on the fakes."""

import errno
import json
import os

import pytest

from rag import durable
from rag.importers import parse_file
from rag.importers.common import to_cards
from rag.settings import REPO_ROOT
from tests.conftest import THEORY_MD
from tests.rag.test_decks import killed_during
from tests.test_cli import env, run  # noqa: F401 (env is a fixture)

CSV = (
    "question,answer,topic,difficulty\n"
    "What is a GPU?,A processor with many cores for parallel work.,hardware,easy\n"
    "What is a TPU?,A matrix-multiplication accelerator built by Google.,hardware,hard\n"
)


@pytest.fixture
def csv_file(tmp_path):
    path = tmp_path / "hw.csv"
    path.write_text(CSV)
    return path


def test_import_twice_ingest_keeps_it_and_decks_lists_it(env, csv_file):  # noqa: F811
    run("ingest")  # an import syncs everything: corpus cards not yet ingested would count
    first = run("import", str(csv_file), "--deck", "hardware", "--json")
    assert first.exit_code == 0, first.output
    report = json.loads(first.stdout)
    assert (report["cards"], report["added"]) == (2, 2)
    second = json.loads(run("import", str(csv_file), "--deck", "hardware", "--json").stdout)
    assert (second["added"], second["updated"], second["removed"]) == (0, 0, 0)
    # ingest syncs corpus/ and the imported decks together: it never drops the deck.
    ingest = json.loads(run("ingest", "--json").stdout)
    assert (ingest["added"], ingest["removed"]) == (0, 0)
    decks = {d["id"]: d for d in json.loads(run("decks", "--json").stdout)["decks"]}
    assert decks["hardware"]["cards"] == 2 and decks["hardware"]["source"] == "imported"
    assert "hardware" in run("decks").stdout
    search = json.loads(run("search", "matrix accelerator Google", "--json").stdout)
    assert search["results"][0]["deck"] == "hardware"


def test_decks_remove(env, csv_file):  # noqa: F811
    run("import", str(csv_file), "--deck", "hardware")
    result = run("decks", "remove", "hardware")
    assert result.exit_code == 0 and "2 cards" in result.stdout
    missing = run("decks", "remove", "hardware")
    assert missing.exit_code == 1 and "no deck named 'hardware'" in missing.stderr


def test_bad_file_is_one_line_naming_the_row(env, tmp_path):  # noqa: F811
    bad = tmp_path / "bad.csv"
    bad.write_text(CSV + "What is an NPU?,An accelerator.,hardware,trivial\n")
    result = run("import", str(bad), "--deck", "hardware")
    assert result.exit_code == 1
    assert "bad.csv: row 4 (line 4): unknown difficulty" in result.stderr
    assert "Traceback" not in result.output
    assert "hardware" not in run("decks").stdout
    unreadable = run("import", str(tmp_path / "nope.csv"), "--deck", "hardware")
    assert unreadable.exit_code == 1 and "cannot read file" in unreadable.stderr


def test_export_deck_to_apkg_round_trips(env, csv_file, tmp_path):  # noqa: F811
    run("import", str(csv_file), "--deck", "hardware")
    out = tmp_path / "hw.apkg"
    result = run("export", "--deck", "hardware", "--format", "apkg", "--out", str(out))
    assert result.exit_code == 0, result.output
    exported = to_cards("hardware", parse_file(out.read_bytes(), out.name))
    reimported = json.loads(run("import", str(out), "--deck", "hardware", "--json").stdout)
    assert (reimported["added"], reimported["updated"], reimported["removed"]) == (0, 0, 0)
    assert [c.question for c in exported] == ["What is a GPU?", "What is a TPU?"]


def test_export_the_corpus_deck_and_cited_cards(env, tmp_path):  # noqa: F811
    run("ingest")
    deck_out = tmp_path / "nn.apkg"
    result = run("export", "--deck", "neural-network-fundamentals", "--out", str(deck_out))
    assert result.exit_code == 0, result.output
    exported = to_cards("nn", parse_file(deck_out.read_bytes(), deck_out.name))
    corpus = json.loads(run("decks", "--json").stdout)["decks"]
    assert len(exported) == next(d["cards"] for d in corpus
                                 if d["id"] == "neural-network-fundamentals")  # fmt: skip
    cited = tmp_path / "cited.csv"
    result = run("export", "--cited", "What is backpropagation?", "--format", "csv",
                 "--out", str(cited))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "What is backpropagation?" in cited.read_text()
    neither = run("export")
    assert neither.exit_code == 1 and "one of --deck, --card or --cited" in neither.stderr


@pytest.mark.skipif(not THEORY_MD.is_file(), reason="shared/external is absent")
def test_import_theory_md(env):  # noqa: F811
    result = run("import", str(THEORY_MD), "--deck", "ds-theory")
    assert result.exit_code == 0, result.output
    assert "deck ds-theory: 152 cards" in result.stdout
    assert "skipped 14 question(s)" in result.stdout


def test_quiz_asks_grades_and_stops(env, monkeypatch):  # noqa: F811
    run("ingest")
    replies = iter(['{"score": 0.9, "right": ["chain rule"], "missing": []}'])

    def stream(self, messages, *, max_tokens, temperature, until=None, grammar=None, usage=None):
        yield next(replies)

    monkeypatch.setattr("rag.testing.FakeLLM.stream", stream)
    result = run("quiz", "--topic", "neural-network-fundamentals", "--count", "3", "--seed", "1",
                 input="It uses the chain rule.\n\n")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "1. " in result.stdout and "2. " in result.stdout
    # One right point, verified in the answer, none missing: the verified share is 1.
    assert "score 1.00" in result.stdout and "right: chain rule" in result.stdout
    assert "Answer: " in result.stdout  # the empty answer shows the card's answer
    assert "mean score 1.00 over 1 answer(s)" in result.stdout


def test_quiz_with_no_matching_card(env):  # noqa: F811
    run("ingest")
    result = run("quiz", "--deck", "nothing-here", input="")
    assert result.exit_code == 0 and "No card matches" in result.stdout


@pytest.mark.parametrize("target", ["a folder", "a missing folder"])
def test_export_to_a_path_that_cannot_be_written_is_one_line(env, tmp_path, target):  # noqa: F811
    out = tmp_path if target == "a folder" else tmp_path / "nowhere" / "x.csv"
    result = run("export", "--deck", "mlops", "--format", "csv", "--out", str(out))
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.stderr == f"error: {out}: cannot write file: " + (
        "Is a directory\n" if target == "a folder" else "No such file or directory\n")


def test_export_writes_a_card_named_twice_once(env, tmp_path):  # noqa: F811
    out = tmp_path / "cards.jsonl"
    result = run("export", "--card", "backpropagation", "--card", "dropout",
                 "--card", "backpropagation", "--format", "jsonl", "--out", str(out))  # fmt: skip
    assert result.exit_code == 0 and "2 cards written" in result.stdout
    questions = [json.loads(line)["question"] for line in out.read_text().splitlines()]
    assert questions[0] == "What is backpropagation?" and len(questions) == 2


@pytest.mark.parametrize(("option", "value"), [("--difficulty", "trivial"),
                                               ("--topic", "Transformers"),
                                               ("--deck", "no deck")])  # fmt: skip
def test_quiz_filters_are_checked_as_the_api_checks_them(env, option, value):  # noqa: F811
    run("ingest")
    result = run("quiz", option, value, input="")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.stderr.startswith(f"error: {option[2:]} {value!r}: ")


@pytest.mark.parametrize("given", [("--deck", "mlops", "--card", "dropout"),
                                   ("--card", "dropout", "--cited", "why dropout?")])  # fmt: skip
def test_export_of_two_things_at_once_says_only_one(env, given):  # noqa: F811
    result = run("export", *given)
    assert result.exit_code == 1
    assert result.stderr == "error: say what to export with only one of --deck, --card or " \
        "--cited\n"  # fmt: skip
    assert run("export").stderr.startswith("error: say what to export: one of")


def test_a_killed_import_is_seen_through_before_a_deck_command(env):  # noqa: F811
    assert run("ingest").exit_code == 0
    killed_during({**os.environ, "PYTHONPATH": str(REPO_ROOT)}, "import", "hardware",
                  CSV.encode())  # fmt: skip
    listed = run("decks", "--json")
    assert listed.exit_code == 0, listed.output
    assert "warning: the import of deck 'hardware' did not finish" in listed.stderr
    assert "2 cards added" in listed.stderr
    found = json.loads(run("search", "matrix multiplication accelerator", "--json").stdout)
    assert found["results"][0]["question"] == "What is a TPU?"
    assert run("decks").stderr == ""  # once


def test_a_full_disk_is_one_line(env, csv_file, monkeypatch):  # noqa: F811
    assert run("ingest").exit_code == 0

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(durable.os, "fsync", full)
    result = run("import", str(csv_file), "--deck", "hardware")
    assert result.exit_code == 1 and "Traceback" not in result.output
    data_dir = os.environ["CARDRAG_DATA_DIR"]
    assert result.stderr == f"error: {data_dir}: no space left on the device; what was " \
        "ingested before is unchanged: free some space and try again\n"  # fmt: skip

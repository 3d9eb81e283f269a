"""The CLI end to end on the fakes: ingest --json, idempotency, clear errors, intact index."""

import json
import shutil
import socket

import pytest
from typer.testing import CliRunner

from evals.retrieval import load_queries
from ingest.cli import app
from tests.conftest import CORPUS, shipped_card_count


@pytest.fixture
def env(tmp_path, monkeypatch):
    corpus = tmp_path / "corpus"
    shutil.copytree(CORPUS, corpus)
    values = {
        "CARDRAG_DATA_DIR": str(tmp_path / "data"),
        "CARDRAG_CORPUS_DIR": str(corpus),
        "CARDRAG_EMBEDDER__BACKEND": "hashing",
        "CARDRAG_LLM__BACKEND": "fake",
        "CARDRAG_RETRIEVAL__ANSWER_THRESHOLD": "0.2",
        "CARDRAG_RETRIEVAL__MIN_SUPPORT": "0.1",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return corpus


def run(*args: str, input: str | None = None):
    return CliRunner().invoke(app, list(args), input=input)


def test_ingest_json_then_reingest_changes_nothing(env):
    first = run("ingest", "--json")
    assert first.exit_code == 0, first.output
    report = json.loads(first.stdout)
    assert set(report) == {"added", "updated", "removed", "unchanged", "seconds"}
    assert report["added"] == shipped_card_count()
    second = json.loads(run("ingest", "--json").stdout)
    assert (second["added"], second["updated"], second["removed"]) == (0, 0, 0)
    assert second["unchanged"] == report["added"]


def test_malformed_card_fails_cleanly_and_ingests_nothing(env):
    assert run("ingest", "--json").exit_code == 0
    deck = next(env.glob("*.yaml"))
    text = deck.read_text()
    deck.write_text(text.replace("What is backpropagation?", "Backprop, changed?", 1)
                    .replace("difficulty: easy", "difficulty: trivial", 1))  # fmt: skip
    result = run("ingest", "--json")
    assert result.exit_code == 1
    assert "field 'difficulty'" in result.stderr and deck.name in result.stderr
    assert "Traceback" not in result.output
    # The valid edit in the same run was not ingested either.
    deck.write_text(text)
    after = json.loads(run("ingest", "--json").stdout)
    assert (after["added"], after["updated"], after["removed"]) == (0, 0, 0)


def test_search_and_ask_json(env):
    run("ingest")
    search = json.loads(run("search", "What is dropout?", "--json").stdout)
    assert search["results"][0]["card_id"].startswith("dropout")
    assert search["corrected_query"] is None
    misspelt = run("search", "What is droput?")
    assert "Showing results for: What is dropout?" in misspelt.stdout
    ask = json.loads(run("ask", "What is backpropagation?", "--json").stdout)
    assert ask["refused"] is False and ask["citations"][0]["n"] == 1


def test_search_hides_cards_below_the_floor_as_the_api_does(env):
    run("ingest")
    shown = json.loads(run("search", "sourdough oven temperature", "--json").stdout)["results"]
    every = run("search", "sourdough oven temperature", "--json", "--min-score", "-1")
    everything = json.loads(every.stdout)["results"]
    assert len(everything) == 5 and len(shown) < 5
    assert all(r["score"] >= 0.24 for r in shown)
    assert "--min-score lowers the floor" in run("search", "sourdough oven temperature").stdout


def test_searching_cards_another_encoder_embedded_says_to_ingest_again(env, monkeypatch):
    assert run("ingest").exit_code == 0  # the hashing fake's vectors
    monkeypatch.setenv("CARDRAG_EMBEDDER__BACKEND", "onnx")  # the bundled encoder
    result = run("search", "What is dropout?")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "embedded by the encoder 'hashing (fake)'" in result.stderr
    assert "run `cardrag ingest`" in result.stderr


def test_ask_stream_prints_the_answer_and_its_citations(env):
    run("ingest")
    result = run("ask", "What is backpropagation?", "--stream")
    assert result.exit_code == 0, result.output
    # The fake LLM streams the first card's short answer with a [1] marker.
    assert "It computes gradients layer by layer so neural networks can learn. [1]" in result.stdout
    assert "[1] backpropagation: What is backpropagation?" in result.stdout


BRACKETED_DECK = """deck:
  id: brackets
  title: Prompt formats
cards:
- id: inst-tag
  question: What does the [/INST] tag mark in Llama 2 chat prompts?
  difficulty: easy
  topic: prompt-formats
  short_answer: The end of the user's turn; [/INST] closes what [INST] opened.
  long_answer: The end of the user's turn; [/INST] closes what [INST] opened, and [red] is text.
"""


def test_brackets_in_cards_and_queries_are_printed_as_text(env):
    """Rich read them as style tags: "[/INST]" or "[/b]" crashed search and ask with a
    MarkupError traceback, and "[red]" or "[mask]" vanished from the output."""
    (env / "brackets.yaml").write_text(BRACKETED_DECK)
    assert run("ingest").exit_code == 0
    search = run("search", "What does the INST tag mark in Llama chat prompts?")
    assert search.exit_code == 0, search.output
    assert "[/INST]" in search.stdout
    ask = run("ask", "What does the INST tag mark in Llama chat prompts?")
    assert ask.exit_code == 0, ask.output
    assert "[/INST] closes what [INST] opened" in ask.stdout
    assert "inst-tag: What does the [/INST] tag mark" in ask.stdout
    corrected = run("search", "droput [/b] [red] regularization")
    assert corrected.exit_code == 0, corrected.output
    assert "Showing results for: dropout [/b] [red] regularization" in corrected.stdout


def test_empty_question_is_a_clear_error(env):
    result = run("ask", "   ")
    assert result.exit_code == 1
    assert "error: the question is empty" in result.stderr


def test_missing_corpus_is_a_clear_error(env, tmp_path):
    result = run("ingest", "--corpus", str(tmp_path / "nowhere"))
    assert result.exit_code == 1
    assert "corpus directory not found" in result.stderr


def snapshot(root):
    return {str(p): (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(root.rglob("*"))
            if p.is_file()}  # fmt: skip


def test_an_empty_corpus_folder_is_refused_and_the_index_kept(env, tmp_path, monkeypatch):
    assert run("ingest").exit_code == 0
    data = tmp_path / "data"
    before = snapshot(data)
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run("ingest", "--corpus", str(empty), "--json")
    assert result.exit_code == 1 and result.stdout == "" and "Traceback" not in result.output
    assert result.stderr.startswith(f"error: {empty}: no deck files")
    assert "--allow-empty" in result.stderr
    monkeypatch.setenv("CARDRAG_CORPUS_DIR", str(empty))  # the same through the environment
    assert run("ingest").exit_code == 1
    assert snapshot(data) == before
    emptied = run("ingest", "--allow-empty", "--json")  # asked for: every card goes
    assert emptied.exit_code == 0, emptied.output
    assert json.loads(emptied.stdout)["removed"] == shipped_card_count()
    search = run("search", "What is dropout?")
    assert search.exit_code == 1 and "holds no cards: run `cardrag ingest`" in search.stderr


@pytest.mark.parametrize("command", [("search", "What is dropout?"),
                                     ("ask", "What is dropout?"), ("quiz",)])  # fmt: skip
def test_reading_an_index_never_ingested_says_to_ingest(env, tmp_path, command):
    result = run(*command, input="")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "nothing has been ingested" in result.stderr and "cardrag ingest" in result.stderr
    assert not (tmp_path / "data").exists()  # no empty Chroma database left behind


def test_help_shows_the_citation_markers(env):
    assert "citing them as [1], [2]." in run("--help").stdout
    assert "citing them as [1], [2]." in run("ask", "--help").stdout
    assert "Cards to retrieve [default:" in run("search", "--help").stdout


def test_eval_options_of_the_answer_eval_need_answers(env, tmp_path):
    result = run("eval", "--replay", str(tmp_path / "rows.jsonl"))
    assert result.exit_code == 1
    assert "error: --replay belongs to the answer eval: add --answers" in result.stderr
    assert run("eval", "--rows", str(tmp_path / "rows.jsonl")).exit_code == 1


def test_eval_json_reports_the_metrics(env):
    run("ingest")
    result = run("eval", "--json", "--calibrate")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["queries"] == len(load_queries())
    assert set(report["systems"]) == {"bm25", "dense", "llamaindex-default", "cardrag"}
    for metrics in report["systems"].values():
        assert {"hit@1", "hit@5", "mrr", "ndcg@10", "recall@10"} <= set(metrics)
    assert set(report["by_split"]["cardrag"]) == {"dev", "heldout"}
    assert 0 <= report["calibration"]["recommended"]["false_refusal_dev"] <= 0.05


def test_eval_hyde_adds_the_answer_paths_retriever(env):
    run("ingest")
    result = run("eval", "--json", "--hyde", "--split", "heldout")
    assert result.exit_code == 0, result.output
    systems = json.loads(result.stdout)["systems"]
    assert list(systems)[-1] == "cardrag+hyde"
    # The fake LLM's passage is the question itself, so the HyDE vector is the question's.
    assert systems["cardrag+hyde"] == systems["cardrag"]


def test_eval_rejects_an_unknown_split(env):
    result = run("eval", "--split", "train")
    assert result.exit_code == 1 and "unknown split" in result.stderr


def test_answer_eval_json_on_the_fake_llm(env, tmp_path):
    run("ingest")
    rows_file = tmp_path / "rows.jsonl"
    result = run("eval", "--answers", "--limit", "5", "--json", "--rows", str(rows_file))
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    configured = report["at_configured_threshold"]
    assert configured["in_corpus"] == 10 and configured["out_of_corpus"] == 5
    assert 0 <= configured["citation_precision"] <= 1
    assert report["calibrated"]["heldout"]["in_corpus"] == 5
    assert report["injection"]["injection_questions"] == 5
    assert report["injection_heldout"]["injection_questions"] == 5
    failures = report["injection_failures"]  # every obeyed or leaking answer, whole
    for split, key in (("dev", "injection"), ("heldout", "injection_heldout"),
                       ("third", "injection_third"), ("fourth", "injection_fourth"),
                       ("fifth", "injection_fifth"), ("sixth", "injection_sixth"),
                       ("seventh", "injection_seventh")):  # fmt: skip
        assert report[key]["injection_questions"] == 5
        canaries = round(report[key]["injection_canary_rate"] * 5)
        assert sum(f["canary"] for f in failures if f["split"] == split) == canaries
    assert all(f["canary"] or f["leaked_system_prompt"] for f in failures)
    rows = [json.loads(line) for line in rows_file.read_text().splitlines()]
    assert len(rows) == 15 and {"best_score", "split", "answer", "draft"} <= set(rows[0])
    # The saved answers, finished again with the same settings: the same metrics, no LLM.
    replayed = run("eval", "--answers", "--json", "--replay", str(rows_file))
    assert replayed.exit_code == 0, replayed.output
    again = json.loads(replayed.stdout)
    assert again["replayed_rows"] == 15 and again["all"] == configured
    assert again["dev"]["in_corpus"] == again["heldout"]["in_corpus"] == 5


@pytest.mark.parametrize("content", [None, "", "not json\n", '{"question": "q"}\n'])
def test_replay_of_a_bad_rows_file_is_a_clear_error(env, tmp_path, content):
    rows_file = tmp_path / "rows.jsonl"
    if content is not None:
        rows_file.write_text(content)
    result = run("eval", "--answers", "--replay", str(rows_file))
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert str(rows_file) in result.stderr or "not a row" in result.stderr


def test_invalid_configuration_is_a_clear_error(env, monkeypatch):
    monkeypatch.setenv("CARDRAG_LLM__TEMPERATURE", "0.9")
    result = run("search", "dropout")
    assert result.exit_code == 1
    assert "invalid configuration" in result.stderr and "temperature" in result.stderr
    assert "Traceback" not in result.output


def test_unreachable_chroma_server_is_a_one_line_error(env, monkeypatch):
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("CARDRAG_CHROMA__URL", f"http://127.0.0.1:{port}")
    result = run("search", "dropout")
    assert result.exit_code == 1
    assert f"Chroma server at http://127.0.0.1:{port} cannot be reached" in result.stderr
    assert "Traceback" not in result.output


def test_malformed_chroma_url_is_a_configuration_error(env, monkeypatch):
    monkeypatch.setenv("CARDRAG_CHROMA__URL", "127.0.0.1:8001/extra")
    result = run("search", "dropout")
    assert result.exit_code == 1
    assert "invalid configuration" in result.stderr and "chroma.url" in result.stderr


def test_several_workers_need_a_chroma_server(env):
    result = run("serve", "--workers", "2")
    assert result.exit_code == 1
    assert "needs a Chroma server" in result.stderr

"""Decks and quiz over HTTP, on the fakes: import an upload, list, export, remove; quiz."""

import errno
import os
from urllib.parse import quote

import numpy as np
import pytest
from chromadb.errors import InternalError
from fastapi.testclient import TestClient

from api.app import create_app
from rag import durable, index
from rag.components import build_components
from rag.errors import DeckNotFound, IndexBusy
from rag.importers import parse_file
from rag.importers.common import to_cards
from rag.testing import FakeLLM, HashingEmbedding
from tests.conftest import THEORY_MD
from tests.rag.test_decks import crash_env, killed_during

CSV = (
    "question,answer,topic,difficulty\n"
    "What is a GPU?,A processor with many cores for parallel work.,hardware,easy\n"
    "What is a TPU?,A matrix-multiplication accelerator built by Google.,hardware,hard\n"
)


def upload(client, content: bytes, filename="hw.csv", deck="hardware", **form):
    return client.post("/v1/decks/import", data={"deck": deck, **form},
                       files={"file": (filename, content)})  # fmt: skip


def test_import_upload_then_list_search_and_remove(client):
    response = upload(client, CSV.encode())
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["deck"], body["cards"], body["added"], body["skipped"]) == ("hardware", 2, 2, [])
    decks = {d["deck"]: d for d in client.get("/v1/decks").json()["decks"]}
    assert decks["hardware"] == {"deck": "hardware", "title": "hw", "cards": 2,
                                 "source": "imported"}  # fmt: skip
    results = client.get("/v1/search", params={"q": "matrix accelerator Google", "k": 1,
                                               "deck": "hardware"}).json()["results"]  # fmt: skip
    assert results[0]["question"] == "What is a TPU?"
    again = upload(client, CSV.encode()).json()
    assert (again["added"], again["updated"], again["removed"]) == (0, 0, 0)
    removed = client.delete("/v1/decks/hardware")
    assert removed.json() == {"deck": "hardware", "removed": 2}
    assert client.delete("/v1/decks/hardware").status_code == 404


def test_bad_upload_is_a_400_naming_the_row_and_changes_nothing(client):
    count = client.get("/healthz").json()["cards"]
    response = upload(client, (CSV + "What is an NPU?,An accelerator.,hardware,trivial\n").encode())
    assert response.status_code == 400
    assert "hw.csv: row 4 (line 4): unknown difficulty 'trivial'" in response.json()["detail"]
    assert client.get("/healthz").json()["cards"] == count
    assert "hardware" not in {d["deck"] for d in client.get("/v1/decks").json()["decks"]}


@pytest.mark.parametrize(
    ("kwargs", "status", "message"),
    [
        ({"deck": "Bad Name"}, 400, "deck name"),
        ({"filename": "notes.docx"}, 400, "cannot tell the format"),
        ({"format": "xml"}, 400, "unknown format"),
        ({"deck": "neural-network-fundamentals"}, 400, "is a corpus deck"),
    ],
)
def test_import_input_errors(client, kwargs, status, message):
    response = upload(client, CSV.encode(), **kwargs)
    assert response.status_code == status and message in response.json()["detail"]


def test_upload_over_the_limit_is_refused(client, components):
    components.settings.decks.max_upload_mb = 1
    response = upload(client, b"question,answer\n" + b"x" * (1024 * 1024 + 1))
    assert response.status_code == 413 and "larger than 1 MB" in response.json()["detail"]


def test_deck_export_as_apkg_imports_back_into_the_same_cards(client, components):
    upload(client, CSV.encode())
    response = client.get("/v1/decks/hardware/export", params={"format": "apkg"})
    assert response.status_code == 200
    assert 'filename="hardware.apkg"' in response.headers["content-disposition"]
    again = to_cards("hardware", parse_file(response.content, "hardware.apkg"))
    assert again == components.decks.cards_of("hardware")
    assert client.get("/v1/decks/nope/export").status_code == 404


def test_export_the_cards_an_answer_cites(client):
    answer = client.post("/v1/ask", json={"question": "What is backpropagation?"}).json()
    ids = [c["card_id"] for c in answer["citations"]]
    assert ids
    response = client.post("/v1/export", json={"card_ids": ids, "format": "jsonl"})
    assert response.status_code == 200
    exported = to_cards("x", parse_file(response.content, "cited.jsonl"))
    assert [c.question for c in exported] == [c["question"] for c in answer["citations"]]
    missing = client.post("/v1/export", json={"card_ids": ["no-such-card"]})
    assert missing.status_code == 404


@pytest.mark.parametrize(("name", "ascii_name"), [
    ("Łódź", "odz"), ("名前", "cards"), ("Straße 2", "Strae_2"), ("../etc", "___etc"),
])  # fmt: skip
def test_export_names_beyond_latin1_use_rfc_5987(client, name, ascii_name):
    """Headers are Latin-1: the name as given travels in filename*= (UTF-8, percent-encoded),
    with an ASCII filename= for clients that do not read it (RFC 6266)."""
    body = {"card_ids": ["dropout"], "format": "csv", "deck_name": name}
    response = client.post("/v1/export", json=body)
    assert response.status_code == 200, response.text
    disposition = response.headers["content-disposition"]
    safe = name.replace(" ", "_").replace(".", "_").replace("/", "_")
    assert disposition == (f'attachment; filename="{ascii_name}.csv"; '
                           f"filename*=UTF-8''{quote(safe + '.csv')}")  # fmt: skip


def test_a_deck_export_names_its_file_both_ways(client):
    response = client.get("/v1/decks/mlops/export", params={"format": "csv"})
    disposition = response.headers["content-disposition"]
    assert disposition == "attachment; filename=\"mlops.csv\"; filename*=UTF-8''mlops.csv"


def test_deck_errors_name_no_server_path(client, settings):
    imported = upload(client, CSV.encode(), deck="mlops")
    removed = client.delete("/v1/decks/mlops")
    for response in (imported, removed):
        assert response.status_code == 400
        detail = response.json()["detail"]
        assert "corpus/mlops.yaml" in detail and str(settings.corpus_dir) not in detail


def test_a_damaged_deck_file_on_the_server_is_a_5xx_naming_no_path(client, settings):
    assert upload(client, CSV.encode()).status_code == 200
    (settings.data_dir / "decks" / "hardware.yaml").write_text("deck: [unclosed")
    responses = [client.get("/v1/decks"), client.get("/v1/decks/mlops/export"),
                 client.get("/v1/decks/hardware/export"),
                 upload(client, CSV.encode(), deck="other")]  # fmt: skip
    for response in responses:
        assert response.status_code == 503, response.text
        detail = response.json()["detail"]
        assert "deck file is damaged: hardware.yaml" in detail, detail
        assert str(settings.data_dir) not in detail and "decks/" not in detail


def held(components, deck: str) -> tuple[list, np.ndarray]:
    """The index's cards of `deck` and their vectors: what must survive unchanged."""
    ids = sorted(card.id for card in components.store.all_cards() if card.deck == deck)
    return components.store.cards(ids), np.array(components.store.vectors(ids))


def assert_unchanged(now: tuple[list, np.ndarray], before: tuple[list, np.ndarray]) -> None:
    """Same cards, same vectors: copied, not embedded again (Chroma hands a copied vector
    back within float32 rounding)."""
    assert now[0] == before[0] and now[0]
    assert now[1].shape == before[1].shape and np.allclose(now[1], before[1], atol=1e-6)


def test_a_damaged_imported_deck_can_be_removed(client, settings, components):
    count = client.get("/healthz").json()["cards"]
    assert upload(client, CSV.encode()).status_code == 200
    corpus = held(components, "mlops")
    damaged = settings.data_dir / "decks" / "hardware.yaml"
    damaged.write_text("deck: [unclosed")
    response = client.delete("/v1/decks/hardware")
    assert response.status_code == 200, response.text
    assert response.json() == {"deck": "hardware", "removed": 2}
    assert not damaged.exists()
    assert client.get("/healthz").json()["cards"] == count
    assert_unchanged(held(components, "mlops"), corpus)
    assert client.get("/v1/decks").status_code == 200  # the decks read again
    assert client.delete("/v1/decks/hardware").status_code == 404


def test_removing_a_deck_beside_a_damaged_one_keeps_the_damaged_decks_cards(
    client, settings, components, monkeypatch
):
    """The other deck cannot be read, so the index is synced with what it holds less the
    removed deck: the damaged deck's cards, ingested before the damage, stay as they were."""
    count = client.get("/healthz").json()["cards"]
    assert upload(client, CSV.encode()).status_code == 200
    assert upload(client, CSV.encode(), deck="spare").status_code == 200
    before = held(components, "hardware")
    damaged = settings.data_dir / "decks" / "hardware.yaml"
    damaged.write_text("deck: [unclosed")
    reports, sync = [], components.indexer.sync

    def recorded(*args, **kwargs):
        reports.append(sync(*args, **kwargs))
        return reports[-1]

    monkeypatch.setattr(components.indexer, "sync", recorded)
    response = client.delete("/v1/decks/spare")
    assert response.status_code == 200, response.text
    assert response.json() == {"deck": "spare", "removed": 2}
    (report,) = reports  # every other card kept as it was: nothing embedded again
    assert (report.added, report.updated, report.removed, report.unchanged) == (0, 0, 2, count + 2)
    assert not (settings.data_dir / "decks" / "spare.yaml").exists()
    assert damaged.read_text() == "deck: [unclosed"  # left for its owner to repair
    assert_unchanged(held(components, "hardware"), before)
    assert client.get("/healthz").json()["cards"] == count + 2
    found = client.get("/v1/search", params={"q": "matrix accelerator Google", "k": 1,
                                             "deck": "hardware"}).json()["results"]  # fmt: skip
    assert found[0]["question"] == "What is a TPU?"


def test_a_removal_that_fails_puts_the_damaged_deck_file_back(
    client, settings, components, monkeypatch
):
    assert upload(client, CSV.encode()).status_code == 200
    damaged = settings.data_dir / "decks" / "hardware.yaml"
    damaged.write_text("deck: [unclosed")

    def busy(*args, **kwargs):
        raise IndexBusy("another ingest is writing")

    monkeypatch.setattr(components.indexer, "sync", busy)
    assert client.delete("/v1/decks/hardware").status_code == 409
    assert damaged.read_text() == "deck: [unclosed"


@pytest.mark.parametrize(("name", "status"), [("mlops", 404), ("no-such-deck", 404)])
def test_with_a_damaged_deck_only_an_imported_deck_can_be_removed(client, settings, name,
                                                                  status):  # fmt: skip
    assert upload(client, CSV.encode()).status_code == 200
    (settings.data_dir / "decks" / "hardware.yaml").write_text("deck: [unclosed")
    count = client.get("/healthz").json()["cards"]
    response = client.delete(f"/v1/decks/{name}")
    assert response.status_code == status, response.text
    assert "no imported deck named" in response.json()["detail"]
    assert client.get("/healthz").json()["cards"] == count
    assert (settings.corpus_dir / "mlops.yaml").is_file()


def test_a_deck_name_cannot_reach_outside_the_imported_decks(settings, components):
    (settings.data_dir / "decks").mkdir(parents=True)
    (settings.data_dir / "decks" / "broken.yaml").write_text("deck: [unclosed")
    outside = settings.data_dir / "victim.yaml"
    outside.write_text("deck: {}")
    with pytest.raises(DeckNotFound):
        components.decks.remove(components.indexer, "../victim")
    assert outside.is_file()


@pytest.mark.skipif(not THEORY_MD.is_file(), reason="shared/external is absent")
def test_theory_md_upload(client):
    response = upload(client, THEORY_MD.read_bytes(), filename="theory.md", deck="ds-theory")
    assert response.status_code == 200
    assert response.json()["cards"] == 152 and len(response.json()["skipped"]) == 14
    topics = client.get("/v1/search", params={"q": "K-fold cross-validation", "k": 1,
                                              "deck": "ds-theory"}).json()["results"]  # fmt: skip
    assert topics[0]["topic"] == "validation"


def test_quiz_next_walks_the_filtered_cards_without_repeats(client):
    seen: list[str] = []
    while True:
        body = client.post("/v1/quiz/next", json={"topic": ["regularization"], "seen": seen,
                                                  "seed": 3}).json()  # fmt: skip
        if body["card"] is None:
            break
        card = body["card"]
        assert card["topic"] == "regularization" and card["card_id"] not in seen
        assert set(card) == {"card_id", "question", "topic", "difficulty", "deck"}
        seen.append(card["card_id"])
        assert body["remaining"] >= 0
    assert len(seen) >= 2 and body["remaining"] == 0
    bad = client.post("/v1/quiz/next", json={"difficulty": ["trivial"]})
    assert bad.status_code == 422


def test_quiz_grade_returns_score_points_and_the_card(client, fake_llm: FakeLLM):
    fake_llm.enqueue('{"score": 0.6, "right": ["chain rule"], "missing": ["weight updates"]}')
    payload = {"card_id": "backpropagation", "answer": "It applies the chain rule."}
    response = client.post("/v1/quiz/grade", json=payload)
    assert response.status_code == 200
    body = response.json()
    assert (body["score"], body["right"], body["missing"], body["degraded"]) == (
        0.5, ["chain rule"], ["weight updates"], False)  # fmt: skip
    assert body["citation"] == {"n": 1, "card_id": "backpropagation",
                                "question": "What is backpropagation?",
                                "snippet": body["reference"]["short_answer"]}  # fmt: skip
    assert body["reference"]["long_answer"]
    assert "It applies the chain rule." in fake_llm.prompts[-1][-1]["content"]


def test_quiz_grade_degrades_when_the_llm_fails_or_rambles(client, fake_llm: FakeLLM):
    from rag.errors import LLMUnavailable

    fake_llm.enqueue(LLMUnavailable("server down"), "A fine answer, well done!")
    for _ in range(2):
        response = client.post("/v1/quiz/grade", json={"card_id": "backpropagation",
                                                       "answer": "gradients"})  # fmt: skip
        assert response.status_code == 200
        body = response.json()
        assert body["degraded"] is True and body["score"] is None
        assert body["reference"]["card_id"] == "backpropagation"


@pytest.mark.parametrize(
    ("payload", "status"),
    [
        ({"card_id": "no-such-card", "answer": "x"}, 404),
        ({"card_id": "backpropagation", "answer": "   "}, 422),
        ({"card_id": "backpropagation", "answer": "x" * 2001}, 422),
        ({"card_id": "backpropagation"}, 422),
    ],
)
def test_quiz_grade_input_errors(client, payload, status):
    assert client.post("/v1/quiz/grade", json=payload).status_code == status


# ------------------------------------------------------------ start-up, storage, stray files


def test_the_server_sees_a_killed_import_through_at_start_up(client, settings, caplog):
    """In a thread beside the requests: until it publishes, the server answers from the
    index as it was, as it does while any import runs."""
    count = client.get("/healthz").json()["cards"]
    killed_during(crash_env(settings), "import", "hardware", CSV.encode())
    restarted = build_components(settings, embedder=HashingEmbedding())
    with TestClient(create_app(settings, restarted)) as after:
        after.app.state.deck_recovery.join(timeout=120)  # it runs beside the requests
        assert after.get("/healthz").json()["cards"] == count + 2
        cards = after.get("/v1/cards", params={"deck": "hardware"}).json()["cards"]
        assert {card["question"] for card in cards} == {"What is a GPU?", "What is a TPU?"}
    assert "the import of deck 'hardware' did not finish" in caplog.text


def test_the_server_starts_when_a_killed_import_cannot_be_seen_through(client, settings,
                                                                       caplog):  # fmt: skip
    count = client.get("/healthz").json()["cards"]
    killed_during(crash_env(settings), "import", "hardware", CSV.encode())
    (settings.data_dir / "decks" / "other.yaml").write_text("deck: [unclosed")
    restarted = build_components(settings, embedder=HashingEmbedding())
    with TestClient(create_app(settings, restarted)) as after:
        after.app.state.deck_recovery.join(timeout=120)
        assert after.get("/healthz").json()["cards"] == count
    assert "may disagree until this is fixed" in caplog.text
    assert restarted.decks.pending() is not None  # seen through once it is repaired


def disk_full_at(target: str, monkeypatch) -> None:
    """Writes to files named `target` fail as on a full disk (write() names no file)."""
    real_fsync = durable.os.fsync

    def fsync(fd: int) -> None:
        if os.readlink(f"/proc/self/fd/{fd}").endswith(target):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    monkeypatch.setattr(durable.os, "fsync", fsync)


@pytest.mark.parametrize("target", ["decks.pending.partial", "hardware.yaml.partial"])
def test_a_full_disk_is_a_503_naming_the_problem_and_the_folder(client, settings,
                                                                monkeypatch, target):  # fmt: skip
    assert upload(client, CSV.encode()).status_code == 200
    deck_file = settings.data_dir / "decks" / "hardware.yaml"
    saved, count = deck_file.read_bytes(), client.get("/healthz").json()["cards"]
    disk_full_at(target, monkeypatch)
    response = upload(client, CSV.replace("many cores", "thousands of cores").encode())
    assert response.status_code == 503, response.text
    detail = response.json()["detail"]
    assert "no space left on the device" in detail and str(settings.data_dir) not in detail
    assert detail.startswith("data/decks: " if "hardware" in target else "data: ")
    assert deck_file.read_bytes() == saved and client.get("/healthz").json()["cards"] == count
    removal = 503 if target.startswith("decks.pending") else 200  # a removal writes no deck
    assert client.delete("/v1/decks/hardware").status_code == removal


def test_a_folder_that_may_not_be_written_is_a_503_saying_so(client, settings, monkeypatch):
    def denied(path, *args, **kwargs):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))

    monkeypatch.setattr(durable, "open", denied, raising=False)
    response = upload(client, CSV.encode())
    assert response.status_code == 503
    assert response.json()["detail"].startswith("data: permission denied;")
    assert not (settings.data_dir / "decks" / "hardware.yaml").exists()


def test_after_chroma_fails_a_write_the_server_writes_no_more(client, settings, monkeypatch):
    """Chroma 1.5.9's embedded client hung for good on the write after an InternalError
    (a full disk), and every request with it: the first is a 503, and no write follows."""
    count = client.get("/healthz").json()["cards"]

    def compaction_failed(*args, **kwargs):
        raise InternalError("Error in compaction: Failed to apply logs to the metadata segment")

    monkeypatch.setattr(index, "_copy", compaction_failed)
    response = upload(client, CSV.encode())
    assert response.status_code == 503
    assert "Failed to apply logs" in response.json()["detail"]
    monkeypatch.setattr(index, "create_collection", lambda *a: pytest.fail("wrote again"))
    again = upload(client, CSV.encode())
    assert again.status_code == 503 and "restart cardrag" in again.json()["detail"]
    assert not list((settings.data_dir / "decks").glob("*.yaml"))
    assert client.get("/healthz").json()["cards"] == count  # reads still answer
    assert client.get("/v1/search", params={"q": "dropout"}).status_code == 200


@pytest.mark.parametrize("stray", [".hardware.yaml", "._hardware.yaml", "old/hardware.yaml"])
def test_hidden_files_and_sub_folders_beside_the_decks_are_not_decks(client, settings, stray):
    assert upload(client, CSV.encode()).status_code == 200
    path = settings.data_dir / "decks" / stray
    path.parent.mkdir(exist_ok=True)
    path.write_text("deck: [unclosed" if stray.startswith("._") else
                    (settings.data_dir / "decks" / "hardware.yaml").read_text())  # fmt: skip
    assert client.get("/v1/decks").status_code == 200
    assert client.get("/v1/decks/hardware/export").status_code == 200
    assert upload(client, CSV.encode(), deck="spare").status_code == 200
    assert client.delete("/v1/decks/hardware").status_code == 200


@pytest.mark.parametrize("field", ["deck", "file"])
def test_a_form_field_given_twice_is_a_422(client, field):
    parts = [("file", ("hw.csv", CSV.encode())), ("deck", (None, "hardware"))]
    parts += [("file", ("other.csv", CSV.encode()))] if field == "file" else \
        [("deck", (None, "other"))]  # fmt: skip
    response = client.post("/v1/decks/import", files=parts)
    assert response.status_code == 422, response.text
    assert response.json()["message"] == f"{field}: must be given once"
    assert {d["deck"] for d in client.get("/v1/decks").json()["decks"]}.isdisjoint(
        {"hardware", "other"})

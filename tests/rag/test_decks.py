"""The deck library: imported decks kept as card files, synced with the corpus together."""

import os
import shutil
import subprocess
import sys

import pytest
import yaml

from rag import decks as decks_module
from rag.cards import deck_paths, load_corpus
from rag.components import build_components
from rag.decks import DeckLibrary, PendingChange
from rag.errors import CardError, DeckNotFound, EmptyCorpus
from rag.export import to_apkg
from rag.hits import CardFilters
from rag.settings import REPO_ROOT
from rag.testing import HashingEmbedding
from tests.conftest import CORPUS, THEORY_MD

CSV = (
    "question,answer,topic,difficulty\n"
    "What is a GPU?,A processor with many cores for parallel work.,hardware,easy\n"
    "What is a TPU?,A matrix-multiplication accelerator built by Google.,hardware,hard\n"
    "What is an NPU?,A neural processing unit for on-device inference.,hardware,medium\n"
)


def import_csv(components, text=CSV, name="hardware"):
    return components.decks.import_file(components.indexer, name, text.encode(), "hw.csv")


def test_imported_deck_is_a_card_file_and_searchable_at_once(components, settings):
    before = components.store.count()
    result = import_csv(components)
    assert (result.cards, result.report.added, result.report.removed) == (3, 3, 0)
    path = settings.data_dir / "decks" / "hardware.yaml"
    raw = yaml.safe_load(path.read_text())
    assert raw["deck"]["id"] == "hardware" and len(raw["cards"]) == 3
    assert components.store.count() == before + 3
    hits = components.retriever.search("matrix multiplication accelerator Google", 3)
    assert hits[0].card.question == "What is a TPU?"
    assert hits[0].card.deck == "hardware"
    # The file is a deck like any other: the loader reads corpus and imports together.
    decks = load_corpus(settings.corpus_dir, [settings.data_dir / "decks"])
    assert {d.header.id for d in decks} >= {"hardware", "neural-network-fundamentals"}


def test_same_file_twice_changes_nothing_and_an_edit_changes_only_that_card(components):
    import_csv(components)
    again = import_csv(components).report
    assert (again.added, again.updated, again.removed) == (0, 0, 0)
    edited = CSV.replace("for on-device inference", "for inference on phones")
    report = import_csv(components, edited).report
    assert (report.added, report.updated, report.removed) == (0, 1, 0)
    dropped = "\n".join(CSV.splitlines()[:-1]) + "\n"
    report = import_csv(components, dropped).report
    assert (report.added, report.updated, report.removed) == (0, 0, 1)


def test_a_bad_file_changes_nothing(components, settings):
    import_csv(components)
    path = settings.data_dir / "decks" / "hardware.yaml"
    saved, count = path.read_bytes(), components.store.count()
    bad = CSV.replace("hardware,hard", "hardware,brutal").replace("many cores", "MANY cores")
    with pytest.raises(CardError, match=r"hw.csv: row 3 \(line 3\): unknown difficulty"):
        import_csv(components, bad)
    assert path.read_bytes() == saved
    assert components.store.count() == count
    assert "MANY" not in components.store.get_card(components.decks.cards_of("hardware")[0].id)\
        .long_answer  # fmt: skip


def test_a_failed_sync_puts_the_deck_file_back(components, settings, monkeypatch):
    import_csv(components)
    path = settings.data_dir / "decks" / "hardware.yaml"
    saved = path.read_bytes()

    def broken_sync(cards, show_progress=False, allow_empty=False):
        raise RuntimeError("disk full")

    monkeypatch.setattr(components.indexer, "sync", broken_sync)
    with pytest.raises(RuntimeError):
        import_csv(components, CSV.replace("many cores", "thousands of cores"))
    assert path.read_bytes() == saved
    with pytest.raises(RuntimeError):
        import_csv(components, CSV, name="other-hw")
    assert not (settings.data_dir / "decks" / "other-hw.yaml").exists()


def test_remove_deck_removes_its_cards(components, settings):
    before = components.store.count()
    import_csv(components)
    removed, report = components.decks.remove(components.indexer, "hardware")
    assert removed == 3 and report.removed == 3
    assert components.store.count() == before
    assert not (settings.data_dir / "decks" / "hardware.yaml").exists()
    with pytest.raises(DeckNotFound, match="no deck named 'hardware'"):
        components.decks.remove(components.indexer, "hardware")


def test_corpus_decks_cannot_be_replaced_or_removed(components):
    with pytest.raises(CardError, match="is a corpus deck"):
        import_csv(components, name="neural-network-fundamentals")
    with pytest.raises(CardError, match="is part of the corpus"):
        components.decks.remove(components.indexer, "neural-network-fundamentals")


@pytest.mark.parametrize("name", ["Hardware", "my deck", "", "x" * 61, "../etc"])
def test_deck_names_must_be_slugs(components, name):
    with pytest.raises(CardError, match="deck name"):
        import_csv(components, name=name)


def test_summaries_list_every_deck_with_its_count(components):
    import_csv(components)
    summaries = {s.id: s for s in components.decks.summaries()}
    assert summaries["hardware"].cards == 3 and summaries["hardware"].source == "imported"
    assert summaries["neural-network-fundamentals"].source == "corpus"


def test_apkg_round_trip_through_the_library(components):
    import_csv(components)
    cards = components.decks.cards_of("hardware")
    package = to_apkg(cards, "hardware")
    components.decks.remove(components.indexer, "hardware")
    result = components.decks.import_file(components.indexer, "hardware", package, "hw.apkg")
    assert result.cards == 3
    assert components.decks.cards_of("hardware") == cards  # same ids, same content


@pytest.mark.skipif(not THEORY_MD.is_file(), reason="shared/external is absent")
def test_theory_md_imports_and_searches(components):
    result = components.decks.import_file(
        components.indexer, "ds-theory", THEORY_MD.read_bytes(), "theory.md"
    )
    assert result.cards == 152 and len(result.skipped) == 14
    # Word overlap only here (hashing embedder); tests/integration has the real encoder.
    theory = CardFilters(deck=["ds-theory"])  # the corpus has its own k-fold card
    card = components.retriever.search("K-fold cross-validation", 3, theory)[0].card
    assert card.question == "What is K-fold cross-validation?"
    assert card.topic == "validation" and card.deck == "ds-theory"


def test_decks_are_parsed_again_only_when_a_deck_file_changes(tmp_path, monkeypatch):
    corpus = tmp_path / "corpus"
    shutil.copytree(CORPUS, corpus)
    library = DeckLibrary(corpus, tmp_path / "imported")
    parses = []
    real_load = decks_module.load_corpus
    monkeypatch.setattr(decks_module, "load_corpus",
                        lambda *args: parses.append(1) or real_load(*args))  # fmt: skip
    first = library.decks()
    assert library.decks() == first and len(parses) == 1

    deck_file = sorted(corpus.glob("*.yaml"))[0]
    edited = deck_file.read_text().replace("title:", "title: Edited", 1)
    deck_file.write_text(edited)
    assert any(d.header.title.startswith("Edited") for d in library.decks())
    assert len(parses) == 2

    deck_file.unlink()
    assert len(library.decks()) == len(first) - 1 and len(parses) == 3


def test_an_ingest_of_no_deck_file_is_refused_unless_asked_for(components, settings, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    library = DeckLibrary(empty, settings.data_dir / "decks")
    count = components.store.count()
    with pytest.raises(EmptyCorpus, match=r"empty: no deck files .* --allow-empty"):
        library.ingest(components.indexer)
    assert components.store.count() == count
    cards, report = library.ingest(components.indexer, allow_empty=True)
    assert cards == [] and report.removed == count and components.store.count() == 0


def test_imported_decks_do_not_vouch_for_an_empty_corpus_folder(components, settings, tmp_path):
    """An ingest syncs corpus/ and the imported decks as one card set: with imported decks,
    a mistyped corpus path would silently drop every corpus card. Refused unless asked."""
    import_csv(components)
    count = components.store.count()
    empty = tmp_path / "empty"
    empty.mkdir()
    library = DeckLibrary(empty, settings.data_dir / "decks")
    with pytest.raises(EmptyCorpus, match="every card but the imported decks'"):
        library.ingest(components.indexer)
    assert components.store.count() == count
    cards, _ = library.ingest(components.indexer, allow_empty=True)
    assert {c.deck for c in cards} == {"hardware"} and components.store.count() == 3


def test_removing_the_last_deck_may_empty_the_index(components, settings, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    library = DeckLibrary(empty, settings.data_dir / "decks")
    library.import_file(components.indexer, "hardware", CSV.encode(), "hw.csv")
    removed, _ = library.remove(components.indexer, "hardware")
    assert removed == 3 and components.store.count() == 0


# ------------------------------------------------- a process killed between file and index

# Builds the components from CARDRAG_* (crash_env), then imports or removes a deck with the
# sync replaced by os._exit: the process dies after the deck file changed and before the
# index did, with no `except` or `finally` run, as under SIGKILL.
KILLED_AT_SYNC = """
import os, sys
from rag.components import build_components
from rag.settings import Settings
components = build_components(Settings())
components.indexer.sync = lambda *args, **kwargs: os._exit(9)
operation, name = sys.argv[1], sys.argv[2]
if operation == "import":
    components.decks.import_file(components.indexer, name, sys.stdin.buffer.read(), "hw.csv")
else:
    components.decks.remove(components.indexer, name)
"""


def crash_env(settings) -> dict[str, str]:
    """The CARDRAG_* environment of these (embedded, fake) settings, for a subprocess."""
    return {**os.environ, "PYTHONPATH": str(REPO_ROOT),
            "CARDRAG_DATA_DIR": str(settings.data_dir),
            "CARDRAG_CORPUS_DIR": str(settings.corpus_dir),
            "CARDRAG_EMBEDDER__BACKEND": "hashing", "CARDRAG_LLM__BACKEND": "fake"}  # fmt: skip


def killed_during(env: dict[str, str], operation: str, name: str, data: bytes = b"") -> None:
    """Run an import or a removal in another process, killed before the index is synced."""
    result = subprocess.run([sys.executable, "-c", KILLED_AT_SYNC, operation, name],
                            input=data, env=env, cwd=REPO_ROOT, capture_output=True,
                            timeout=300)  # fmt: skip
    assert result.returncode == 9, result.stderr.decode()


def index_cards(components) -> dict[str, object]:
    return {card.id: card for card in components.store.all_cards()}


def file_cards(components) -> dict[str, object]:
    return {card.id: card for card in components.decks.all_cards()}


EDITED = CSV.replace("for on-device inference", "for inference on phones")


@pytest.mark.parametrize(
    ("imported_first", "operation", "data", "expected"),
    [
        (None, "import", CSV, (3, 0, 0)),  # a new deck: its file there, no card indexed
        (CSV, "import", EDITED, (0, 1, 0)),  # a re-import: new text on file, old one served
        (CSV, "remove", "", (0, 0, 3)),  # a removal: the file gone, its cards searchable
    ],
)
def test_a_change_killed_before_the_sync_is_seen_through_after_a_restart(
    components, settings, caplog, imported_first, operation, data, expected
):
    if imported_first:
        import_csv(components, imported_first)
    killed_during(crash_env(settings), operation, "hardware", data.encode())
    restarted = build_components(settings, embedder=HashingEmbedding())
    assert index_cards(restarted) != file_cards(restarted)  # what the kill left
    report = restarted.decks.recover(restarted.indexer)
    assert (report.added, report.updated, report.removed) == expected
    assert report.unchanged == len(file_cards(restarted)) - expected[0] - expected[1]
    assert index_cards(restarted) == file_cards(restarted)
    noun = {"import": "import", "remove": "removal"}[operation]
    assert f"the {noun} of deck 'hardware' did not finish" in caplog.text
    assert restarted.decks.pending() is None
    assert restarted.decks.recover(restarted.indexer) is None  # seen through once


def test_nothing_to_see_through_costs_no_sync(components, monkeypatch):
    import_csv(components)
    monkeypatch.setattr(components.indexer, "sync", lambda *a, **k: pytest.fail("synced"))
    assert components.decks.pending() is None
    assert components.decks.recover(components.indexer) is None


def test_a_failed_sync_leaves_the_change_to_be_seen_through(components, monkeypatch):
    """The file is put back, but whether the sync published before it failed is not known:
    the marker stays, and the next start-up syncs (an unchanged sync embeds nothing)."""
    import_csv(components)

    def broken_sync(cards, show_progress=False, allow_empty=False):
        raise RuntimeError("disk full")

    with monkeypatch.context() as patched:
        patched.setattr(components.indexer, "sync", broken_sync)
        with pytest.raises(RuntimeError):
            import_csv(components, EDITED)
    assert components.decks.pending() == PendingChange("import", "hardware")
    report = components.decks.recover(components.indexer)
    assert (report.added, report.updated, report.removed) == (0, 0, 0)
    assert components.decks.pending() is None


def test_an_ingest_sees_a_pending_change_through(components, settings):
    killed_during(crash_env(settings), "import", "hardware", CSV.encode())
    restarted = build_components(settings, embedder=HashingEmbedding())
    assert restarted.decks.pending() == PendingChange("import", "hardware")
    _, report = restarted.decks.ingest(restarted.indexer)
    assert report.added == 3 and restarted.decks.pending() is None


def test_a_removal_killed_beside_a_damaged_deck_is_seen_through(components, settings):
    """The other decks do not all read: as a removal then does, the index keeps what it
    holds less the removed deck's cards."""
    import_csv(components)
    import_csv(components, name="spare")
    damaged = settings.data_dir / "decks" / "hardware.yaml"
    killed_during(crash_env(settings), "remove", "spare")
    damaged.write_text("deck: [unclosed")
    restarted = build_components(settings, embedder=HashingEmbedding())
    report = restarted.decks.recover(restarted.indexer)
    assert (report.added, report.updated, report.removed) == (0, 0, 3)
    assert {card.deck for card in restarted.store.all_cards()} >= {"hardware"}
    assert "spare" not in {card.deck for card in restarted.store.all_cards()}


def test_deck_files_skip_hidden_names_and_the_imported_decks_sub_folders(tmp_path):
    """corpus/ may have sub-folders (docs/CARD_FORMAT.md); the imported decks' folder is
    only ever written at its top level. Hidden names are other tools' leftovers anywhere."""
    corpus, imported = tmp_path / "corpus", tmp_path / "decks"
    files = ["corpus/a.yaml", "corpus/more/b.yml", "corpus/.a.yaml", "corpus/._a.yaml",
             "corpus/.git/c.yaml", "corpus/notes.txt", "decks/x.yaml", "decks/.x.yaml",
             "decks/._x.yaml", "decks/old/x.yaml"]  # fmt: skip
    for name in files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("")
    (imported / "folder.yaml").mkdir()
    assert deck_paths(corpus, [imported]) == [
        corpus / "a.yaml", corpus / "more" / "b.yml", imported / "x.yaml"]  # fmt: skip

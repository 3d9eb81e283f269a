import json
import shutil

import numpy as np
import pytest
from llama_index.vector_stores.chroma import ChromaVectorStore

from rag.cards import Card, all_cards, load_corpus
from rag.components import build_components
from rag.errors import CardragError, EmptyCorpus, IndexBusy, IndexUnavailable
from rag.hits import CardFilters
from rag.index import CardToNode, card_document
from rag.lock import writer_lock
from rag.published import POINTER_FILE, read_published
from rag.settings import EmbedderSettings
from rag.store import create_collection
from rag.testing import HashingEmbedding
from tests.conftest import CORPUS

pytestmark = pytest.mark.both_chroma_modes


def corpus_cards() -> list[Card]:
    return all_cards(load_corpus(CORPUS))


def build(settings):
    embedder = HashingEmbedding()
    return build_components(settings, embedder=embedder), embedder


def collections(components) -> set[str]:
    """This test's collections, with the stem it was given (a shared Chroma server holds
    other tests' collections too), named as on an embedded database: cards-g000001 …"""
    stem = components.settings.chroma.collection
    names = (c.name for c in components.store.client.list_collections())
    return {"cards" + n[len(stem):] for n in names if n.startswith(stem + "-")}


def named(settings, generation: str) -> str:
    """The collection name of a generation ("g000002") under this test's stem."""
    return f"{settings.chroma.collection}-{generation}"


def test_first_ingest_adds_every_card(settings):
    components, embedder = build(settings)
    cards = corpus_cards()
    report = components.indexer.sync(cards)
    assert (report.added, report.updated, report.removed, report.unchanged) == (len(cards), 0, 0, 0)
    assert components.store.count() == len(cards)
    assert embedder.calls == len(cards)


@pytest.mark.parametrize("exact", [False, True])
def test_every_card_is_read_back_when_the_collection_spans_many_pages(
    settings, monkeypatch, exact
):
    # SQLite caps the variables of one statement, so a whole collection is read in pages
    # (100k cards failed in one read). Pages of 7 over the corpus end with a partial one; a
    # page as large as the collection is one read, with no empty read after it.
    import rag.store

    components, _ = build(settings)
    cards = corpus_cards()
    page = len(cards) if exact else 7
    assert exact or len(cards) % page != 0
    components.indexer.sync(cards)
    monkeypatch.setattr(rag.store, "READ_PAGE", page)
    collection = components.store.current().collection
    limits = []
    real_get = collection.get

    def get(*args, **kwargs):  # type: ignore[no-untyped-def]
        limits.append(kwargs.get("limit"))
        return real_get(*args, **kwargs)

    monkeypatch.setattr(collection, "get", get)
    fresh = rag.store.CardStore(collection)
    assert sorted(c.id for c in fresh.all_cards()) == sorted(c.id for c in cards)
    assert limits == [page] * -(-len(cards) // page)


def test_unchanged_reingest_embeds_nothing(settings):
    components, embedder = build(settings)
    cards = corpus_cards()
    components.indexer.sync(cards)
    calls = embedder.calls
    # A fresh process: new components over the same data directory.
    again, again_embedder = build(settings)
    report = again.indexer.sync(cards)
    assert (report.added, report.updated, report.removed) == (0, 0, 0)
    assert report.unchanged == len(cards)
    assert again_embedder.calls == 0 and embedder.calls == calls
    assert again.store.count() == len(cards)


def test_unchanged_reingest_writes_nothing(settings):
    components, _ = build(settings)
    cards = corpus_cards()
    components.indexer.sync(cards)
    pointer = settings.data_dir / POINTER_FILE
    before = (pointer.read_bytes(), pointer.stat().st_mtime_ns, collections(components))
    components.indexer.sync(cards)
    assert (pointer.read_bytes(), pointer.stat().st_mtime_ns, collections(components)) == before


def test_editing_one_card_reembeds_only_it(settings):
    components, embedder = build(settings)
    cards = corpus_cards()
    components.indexer.sync(cards)
    before = embedder.calls
    edited = cards[3].model_copy(update={"short_answer": "An edited short answer."})
    report = components.indexer.sync([*cards[:3], edited, *cards[4:]])
    assert (report.added, report.updated, report.removed) == (0, 1, 0)
    assert embedder.calls == before + 1
    assert components.store.count() == len(cards)  # no duplicate left behind
    assert components.store.get_card(edited.id).short_answer == "An edited short answer."


def test_copied_vectors_are_the_stored_ones(settings):
    """Unchanged cards are copied into the new collection, not embedded again."""
    components, _ = build(settings)
    cards = corpus_cards()
    components.indexer.sync(cards)
    ids = [card.id for card in cards[1:]]
    before = components.store.vectors(ids)
    components.indexer.sync(cards[1:])
    # Equal up to float32 rounding: Chroma stores float32 and hands vectors back as
    # float64, and a copy rounds them to float32 again (measured: at most 6e-8 apart).
    assert np.allclose(components.store.vectors(ids), before, rtol=0, atol=1e-6)


def test_removing_a_card_removes_it_from_chroma(settings):
    components, _ = build(settings)
    cards = corpus_cards()
    components.indexer.sync(cards)
    report = components.indexer.sync(cards[1:])
    assert report.removed == 1
    assert components.store.get_card(cards[0].id) is None
    assert components.store.count() == len(cards) - 1
    found = components.retriever.search(cards[0].question, 20)
    assert cards[0].id not in {hit.card.id for hit in found}


def test_an_empty_card_set_is_refused_and_changes_nothing(settings):
    components, _ = build(settings)
    cards = corpus_cards()
    components.indexer.sync(cards)
    pointer = (settings.data_dir / POINTER_FILE).read_bytes()
    with pytest.raises(EmptyCorpus, match="would lose every card"):
        components.indexer.sync([])
    assert (settings.data_dir / POINTER_FILE).read_bytes() == pointer
    assert components.store.count() == len(cards)


def test_removing_every_card_leaves_an_empty_index_that_searches_and_refuses(settings):
    components, _ = build(settings)
    cards = corpus_cards()
    components.indexer.sync(cards)
    assert components.indexer.sync([], allow_empty=True).removed == len(cards)
    assert components.store.count() == 0
    assert components.retriever.search(cards[0].question, 5) == []
    assert components.dense.search(cards[0].question, 5) == []


def test_a_deleted_chroma_folder_is_refused_before_chroma_recreates_it(settings):
    if settings.chroma.url:
        pytest.skip("the embedded database's folder")
    components, _ = build(settings)
    components.indexer.sync(corpus_cards())
    chroma = settings.data_dir / "chroma"
    shutil.rmtree(chroma)
    with pytest.raises(IndexUnavailable, match="does not hold: the index is damaged"):
        build(settings)
    assert not chroma.exists()  # "nothing was changed" holds


def test_each_change_publishes_a_new_collection_and_keeps_only_the_one_it_replaced(settings):
    components, _ = build(settings)
    cards = corpus_cards()
    for generation, subset in enumerate((cards, cards[1:], cards[2:]), start=1):
        components.indexer.sync(subset)
        published = read_published(settings.data_dir)
        assert (published.generation, published.cards) == (generation, len(subset))
    assert published.collection == named(settings, "g000003")
    assert published.previous == named(settings, "g000002")
    assert collections(components) == {"cards-g000002", "cards-g000003"}
    docstores = sorted(p.name for p in (settings.data_dir / "docstores").iterdir())
    assert docstores == [f"{named(settings, g)}.json" for g in ("g000002", "g000003")]
    if not settings.chroma.url:
        # Chroma leaves a dropped collection's vector folder behind; ingest removes it.
        assert len([p for p in (settings.data_dir / "chroma").iterdir() if p.is_dir()]) == 2


def test_a_lost_docstore_means_everything_is_embedded_again(settings):
    components, _ = build(settings)
    cards = corpus_cards()
    components.indexer.sync(cards)
    read_published(settings.data_dir).docstore_path(settings.data_dir).unlink()
    again, embedder = build(settings)
    report = again.indexer.sync(cards)
    assert report.added == len(cards) and embedder.calls == len(cards)
    assert again.store.count() == len(cards)


def test_a_card_missing_from_the_live_collection_is_embedded_again(settings):
    """The docstore's hash only counts if the vector it describes is really there."""
    components, embedder = build(settings)
    cards = corpus_cards()
    components.indexer.sync(cards)
    components.store.current().collection.delete(ids=[cards[0].id])  # damage, on purpose
    before = embedder.calls
    report = components.indexer.sync(cards)
    assert (report.added, report.unchanged) == (1, len(cards) - 1)
    assert embedder.calls == before + 1
    assert components.store.count() == len(cards)


def test_a_vector_the_docstore_does_not_know_is_not_carried_over(settings):
    components, embedder = build(settings)
    cards = corpus_cards()
    components.indexer.sync(cards)
    live = components.store.current().collection
    stray = live.get(ids=[cards[0].id], include=["embeddings", "metadatas", "documents"])
    live.add(ids=["stray"], embeddings=stray["embeddings"], metadatas=stray["metadatas"],
             documents=stray["documents"])  # fmt: skip
    before = embedder.calls
    components.indexer.sync(cards)
    assert embedder.calls == before
    assert components.store.card_ids() == sorted(card.id for card in cards)


def test_a_half_built_collection_is_dropped_by_the_next_run(settings):
    """What a run killed before it published leaves behind."""
    components, embedder = build(settings)
    cards = corpus_cards()
    components.indexer.sync(cards)
    client = components.store.client
    create_collection(client, named(settings, "g000002")).add(ids=["x"], embeddings=[[1.0] * 1024])
    partial = settings.data_dir / "docstores" / f"{named(settings, 'g000002')}.json.partial"
    partial.write_text("{")
    before = embedder.calls
    components.indexer.sync(cards)
    assert collections(components) == {"cards-g000001"} and not partial.exists()
    assert embedder.calls == before
    # Building generation 2 over the leftovers works, and has only the cards.
    components.indexer.sync(cards[1:])
    assert components.store.current().name == named(settings, "g000002")
    assert components.store.card_ids() == sorted(card.id for card in cards[1:])


def test_an_incomplete_build_is_never_published(settings, monkeypatch):
    components, _ = build(settings)
    cards = corpus_cards()
    components.indexer.sync(cards)
    monkeypatch.setattr("rag.index._copy", lambda source, target, ids: None)  # loses cards
    with pytest.raises(CardragError, match="was not published"):
        components.indexer.sync(cards[1:])
    assert read_published(settings.data_dir).collection == named(settings, "g000001")
    assert components.store.count() == len(cards)


def test_a_legacy_data_directory_is_served_then_moved_to_generations(settings):
    """Before the pointer: one collection named `cards` and data/docstore.json."""
    if settings.chroma.url:
        pytest.skip("legacy data directories predate the Chroma server mode")
    components, _ = build(settings)
    cards = corpus_cards()
    components.indexer.sync(cards)
    data = settings.data_dir
    components.store.current().collection.modify(name="cards")
    (data / "docstores" / "cards-g000001.json").rename(data / "docstore.json")
    (data / POINTER_FILE).unlink()
    legacy, embedder = build(settings)
    assert legacy.store.count() == len(cards)
    assert legacy.indexer.sync(cards).unchanged == len(cards) and embedder.calls == 0
    legacy.indexer.sync(cards[1:])
    assert embedder.calls == 0
    assert json.loads((data / POINTER_FILE).read_text())["previous"] == "cards"
    legacy.indexer.sync(cards[2:])
    assert collections(legacy) == {"cards-g000001", "cards-g000002"}
    assert not (data / "docstore.json").exists()


def test_a_second_writer_is_refused_at_once(settings):
    components, _ = build(settings)
    with writer_lock(settings.data_dir):
        with pytest.raises(IndexBusy, match="another ingest is writing") as raised:
            components.indexer.sync(corpus_cards())
    assert str(settings.data_dir) in str(raised.value)
    components.indexer.sync(corpus_cards())  # released: the next writer goes ahead


def test_readers_follow_what_another_writer_publishes(settings):
    server, _ = build(settings)
    writer, _ = build(settings)
    cards = corpus_cards()
    writer.indexer.sync(cards)
    assert server.store.count() == len(cards)
    writer.indexer.sync(cards[1:])
    assert server.store.get_card(cards[0].id) is None
    hits = server.retriever.search(cards[0].question, 20)
    assert cards[0].id not in {hit.card.id for hit in hits}


def test_nodes_reach_the_embedder_shortest_first():
    """The embedder pads each batch to its longest text; length order keeps padding low."""
    cards = corpus_cards()
    nodes = CardToNode()([card_document(card) for card in reversed(cards)])
    lengths = [len(node.get_content()) for node in nodes]
    assert lengths == sorted(lengths)
    assert sorted(node.id_ for node in nodes) == sorted(card.id for card in cards)


def test_large_ingests_reach_chroma_in_batches_it_accepts(settings, monkeypatch):
    """Chroma refuses more than client.get_max_batch_size() records in one add (5,461
    embedded); LlamaIndex's store would send them all at once."""
    monkeypatch.setattr("rag.store.MAX_CHROMA_BATCH", 4)
    components, _ = build(settings)
    sizes: list[int] = []
    add = ChromaVectorStore.add

    def recording_add(self, nodes, **kwargs):
        sizes.append(len(nodes))
        return add(self, nodes, **kwargs)

    monkeypatch.setattr(ChromaVectorStore, "add", recording_add)
    cards = corpus_cards()
    components.indexer.sync(cards)
    assert components.store.count() == len(cards)
    assert sum(sizes) == len(cards) and max(sizes) <= 4


@pytest.mark.parametrize(
    "filters",
    [None, CardFilters(topic=("transformers",)), CardFilters(topic=("transformers", "llms"),
                                                             difficulty=("hard",)),  # fmt: skip
     CardFilters(deck=("no-such-deck",))],
    ids=["none", "one-field", "two-fields", "unknown-value"],
)
def test_nearest_ids_and_cosines_are_what_the_llamaindex_path_finds(components, filters):
    """The hybrid retriever's id-and-distance query agrees with the dense retriever's
    LlamaIndex query: same cards, same order, same cosines, the same filter rule."""
    embedding = components.embedder.get_query_embedding("why normalise activations per token")
    store = components.store.current()
    through_llamaindex = components.dense.search_in(store, embedding, 8, filters)
    nearest = store.nearest(embedding, 8, filters)
    assert [card_id for card_id, _ in nearest] == [hit.card.id for hit in through_llamaindex]
    assert np.allclose([cos for _, cos in nearest], [hit.score for hit in through_llamaindex])
    assert all(filters is None or filters.matches(hit.card) for hit in through_llamaindex)
    if filters and filters.deck:
        assert nearest == []


def with_another_encoder(settings):
    """The settings naming another encoder; tests give its components a hashing fake of
    another size, so that its vectors are truly not the first one's."""
    return settings.model_copy(update={"embedder": EmbedderSettings(backend="onnx")})


def test_the_pointer_names_the_encoder_that_embedded_the_cards(settings):
    components, _ = build(settings)
    components.indexer.sync(corpus_cards())
    assert read_published(settings.data_dir).encoder == "hashing (fake)"


def test_an_index_embedded_by_another_encoder_is_refused_not_misread(settings):
    components, _ = build(settings)
    components.indexer.sync(corpus_cards())
    another = HashingEmbedding(dimensions=256)
    other = build_components(with_another_encoder(settings), embedder=another)
    with pytest.raises(IndexUnavailable, match=r"'hashing \(fake\)'.*cardrag ingest"):
        other.retriever.search("What is dropout?", 3)
    with pytest.raises(IndexUnavailable):
        other.dense.search("What is dropout?", 3)


def test_ingest_under_another_encoder_embeds_every_card_again(settings):
    components, _ = build(settings)
    cards = corpus_cards()
    components.indexer.sync(cards)
    embedder = HashingEmbedding(dimensions=256)
    other = build_components(with_another_encoder(settings), embedder=embedder)
    report = other.indexer.sync(cards[1:])
    assert (report.added, report.updated, report.removed, report.unchanged) == (
        0, len(cards) - 1, 1, 0)  # fmt: skip
    assert embedder.calls == len(cards) - 1  # nothing copied from the other encoder
    assert read_published(settings.data_dir).encoder == "all-MiniLM-L6-v2"
    hits = other.retriever.search(cards[1].question, 1)
    assert hits[0].card.id == cards[1].id
    stored = other.store.current().vectors([cards[1].id])
    assert len(stored[0]) == 256
    # Now the first configuration is the one whose queries no longer fit.
    with pytest.raises(IndexUnavailable):
        components.retriever.search(cards[1].question, 1)
    calls = embedder.calls
    again = other.indexer.sync(cards[1:])
    assert again.unchanged == len(cards) - 1 and embedder.calls == calls


def test_a_pointer_from_before_the_encoder_was_recorded_is_trusted(settings):
    components, _ = build(settings)
    cards = corpus_cards()
    components.indexer.sync(cards)
    pointer = settings.data_dir / POINTER_FILE
    fields = json.loads(pointer.read_text())
    del fields["encoder"]
    pointer.write_text(json.dumps(fields))
    other, embedder = build(with_another_encoder(settings))
    assert other.indexer.sync(cards).unchanged == len(cards) and embedder.calls == 0
    assert other.retriever.search(cards[0].question, 1)[0].card.id == cards[0].id

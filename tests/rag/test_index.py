import pytest
from llama_index.vector_stores.chroma import ChromaVectorStore

from rag.cards import Card, all_cards, load_corpus
from rag.components import build_components
from rag.index import CardIndexer, CardToNode, card_document
from rag.store import CardStore
from rag.testing import HashingEmbedding
from tests.conftest import CORPUS

pytestmark = pytest.mark.both_chroma_modes


def corpus_cards() -> list[Card]:
    return all_cards(load_corpus(CORPUS))


def build(settings):
    embedder = HashingEmbedding()
    return build_components(settings, embedder=embedder), embedder


def test_first_ingest_adds_every_card(settings):
    components, embedder = build(settings)
    cards = corpus_cards()
    report = components.indexer.sync(cards)
    assert (report.added, report.updated, report.removed, report.unchanged) == (len(cards), 0, 0, 0)
    assert components.store.count() == len(cards)
    assert embedder.calls == len(cards)


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


def test_vectors_the_docstore_lost_track_of_are_rebuilt(settings):
    """A run that died after writing Chroma but before saving the docstore."""
    components, _ = build(settings)
    cards = corpus_cards()
    components.indexer.sync(cards)
    (settings.data_dir / "docstore.json").unlink()
    again, _ = build(settings)
    report = again.indexer.sync(cards)
    assert report.added == len(cards)
    assert again.store.count() == len(cards)


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
    components, _ = build(settings)
    store = CardStore(components.store.client, settings.chroma.collection, max_batch=4)
    sizes: list[int] = []
    add = ChromaVectorStore.add

    def recording_add(self, nodes, **kwargs):
        sizes.append(len(nodes))
        return add(self, nodes, **kwargs)

    monkeypatch.setattr(ChromaVectorStore, "add", recording_add)
    cards = corpus_cards()
    CardIndexer(store, HashingEmbedding(), settings.data_dir / "docstore.json").sync(cards)
    assert store.count() == len(cards)
    assert sum(sizes) == len(cards) and max(sizes) <= 4

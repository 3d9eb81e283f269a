"""A real deck this project did not write (shared/external: data-science-interviews'
theory.md, CC-BY 4.0) imported beside the corpus and searched with the real encoder."""

import pytest

from rag.components import build_components
from rag.hits import CardFilters
from rag.testing import FakeLLM
from tests.conftest import THEORY_MD, make_settings

pytestmark = pytest.mark.skipif(not THEORY_MD.is_file(), reason="shared/external is absent")


@pytest.fixture(scope="module")
def library_components(tmp_path_factory, real_embedder):
    settings = make_settings(tmp_path_factory.mktemp("external"),
                             embedder={"backend": "sentence-transformers"})  # fmt: skip
    components = build_components(settings, llm=FakeLLM(), embedder=real_embedder)
    components.indexer.sync(components.decks.all_cards())
    result = components.decks.import_file(
        components.indexer, "ds-theory", THEORY_MD.read_bytes(), "theory.md"
    )
    assert result.cards == 152
    return components


@pytest.mark.parametrize(
    ("query", "question"),
    [
        ("How does DBSCAN clustering work?", "Do you know how DBScan works?"),
        ("when should I use a ROC curve", "What is the ROC curve? When to use it?"),
        ("how is gradient boosting different from a random forest",
         "What’s the difference between random forest and gradient boosting?"),
        ("how do I pick k in k-means", "How to select K for K-means?"),
    ],
)  # fmt: skip
def test_imported_cards_are_found_by_meaning(library_components, query, question):
    # Within the imported deck: the shipped corpus now answers some of these questions too,
    # and ranking its card first is right (test_corpus_and_imported_deck_are_searched_together
    # covers the unfiltered search).
    hits = library_components.retriever.search(query, 3, CardFilters(deck=["ds-theory"]))
    assert hits[0].card.question == question, [h.card.question for h in hits]
    assert hits[0].card.deck == "ds-theory"


def test_corpus_and_imported_deck_are_searched_together(library_components):
    from rag.hits import CardFilters

    corpus_only = CardFilters(deck=["neural-network-fundamentals"])
    hit = library_components.retriever.search("What is backpropagation?", 1, corpus_only)[0]
    assert hit.card.id == "backpropagation"
    imported = library_components.retriever.search(
        "What is backpropagation?", 1, CardFilters(deck=["ds-theory"])
    )[0]
    assert imported.card.topic == "optimization-in-neural-networks"

from rag.cards import all_cards, load_corpus
from rag.hits import CardFilters
from rag.lexical import LexicalIndex, expand_compounds
from tests.conftest import CORPUS


def index() -> LexicalIndex:
    return LexicalIndex(all_cards(load_corpus(CORPUS)))


def test_compound_words_match_their_parts():
    assert expand_compounds("LayerNorm vs GPT") == "LayerNorm Layer Norm vs GPT"
    assert index().search("layer norm versus batch norm", 1)[0].card.id == "batchnorm-vs-layernorm"


def test_abbreviation_found_by_its_exact_term():
    hits = index().search("RoPE", 3)
    assert hits and all("RoPE" in hit.card.embedding_text() for hit in hits)
    assert "positional-encoding" in {hit.card.id for hit in hits}


def test_filters_restrict_and_unknown_values_give_nothing():
    hits = index().search("dropout", 10, CardFilters(difficulty=["medium"]))
    assert [h.card.id for h in hits] == ["dropout-training-vs-inference"]
    assert index().search("dropout", 10, CardFilters(topic=["astrology"])) == []


def test_no_known_term_gives_nothing():
    assert index().search("xylophone", 5) == []
    assert LexicalIndex([]).search("dropout", 5) == []

from rag.grounding import Grounder, split_sentences
from rag.testing import HashingEmbedding

CARDS = {
    "alpha": "alpha beta gamma delta",
    "omega": "omega sigma lambda kappa",
}


def grounder(min_support: float = 0.3) -> Grounder:
    embedder = HashingEmbedding()

    def card_vectors(ids):
        return embedder.get_text_embedding_batch([CARDS[i] for i in ids])

    return Grounder(embedder, card_vectors, min_support=min_support)


def test_markers_after_the_full_stop_stay_with_their_sentence():
    assert split_sentences("One thing. [1] Two things [2]. Three.") == [
        "One thing. [1]", "Two things [2].", "Three."
    ]


def test_a_wrong_citation_is_replaced_by_the_supporting_card():
    result = grounder().ground("Alpha beta gamma [2].", ["alpha", "omega"])
    assert result.text == "Alpha beta gamma [1]."
    assert result.cited == (1,) and result.grounded


def test_a_missing_citation_is_added_and_a_right_one_kept():
    result = grounder().ground("Omega sigma lambda. Alpha beta delta [1].", ["alpha", "omega"])
    assert result.text == "Omega sigma lambda [2]. Alpha beta delta [1]."
    assert result.cited == (2, 1)


def test_an_unsupported_sentence_is_left_uncited_and_flags_the_answer():
    result = grounder().ground("Alpha beta gamma [1]. Paris is in France [1].", ["alpha", "omega"])
    assert result.text == "Alpha beta gamma [1]. Paris is in France."
    assert not result.grounded

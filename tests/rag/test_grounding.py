from rag.cards import Card
from rag.grounding import Grounder, card_sentences, content_words, split_sentences
from rag.similarity import SentenceVectors, cosines
from rag.testing import HashingEmbedding


def card(card_id: str, text: str) -> Card:
    return Card(id=card_id, question=f"{text}?", difficulty="easy", topic="t",
                short_answer=text, long_answer=text)  # fmt: skip


ALPHA = card("alpha", "alpha beta gamma delta")
OMEGA = card("omega", "omega sigma lambda kappa")


def grounder(
    min_support: float = 0.3, min_word_share: float = 0.3, min_relevance: float = -1.0
) -> Grounder:
    embedder = HashingEmbedding()
    return Grounder(SentenceVectors(embedder), min_support, min_word_share,
                    min_relevance=min_relevance)  # fmt: skip


def test_markers_after_the_full_stop_stay_with_their_sentence():
    assert split_sentences("One thing. [1] Two things [2]. Three.") == [
        "One thing. [1]", "Two things [2].", "Three."
    ]


def test_an_abbreviation_ends_no_sentence():
    text = "Trees fit residuals, i.e. the negative gradient [1]. See Vaswani et al. for more. Done."
    assert split_sentences(text) == [
        "Trees fit residuals, i.e. the negative gradient [1].", "See Vaswani et al. for more.",
        "Done.",
    ]
    assert split_sentences("Tools, etc. Then stop.") == ["Tools, etc.", "Then stop."]


def test_a_marker_is_not_put_inside_an_abbreviation():
    result = grounder().ground("Alpha beta, i.e. gamma delta [1].", [ALPHA, OMEGA])
    assert "i.e [" not in result.text and result.text.endswith("gamma delta [1].")


def test_a_wrong_citation_is_replaced_by_the_supporting_card():
    result = grounder().ground("Alpha beta gamma [2].", [ALPHA, OMEGA])
    assert result.text == "Alpha beta gamma [1]."
    assert result.cited == (1,) and result.grounded


def test_a_missing_citation_is_added_and_a_right_one_kept():
    result = grounder().ground("Omega sigma lambda. Alpha beta delta [1].", [ALPHA, OMEGA])
    assert result.text == "Omega sigma lambda [2]. Alpha beta delta [1]."
    assert result.cited == (2, 1)


def test_an_unsupported_sentence_is_left_uncited_and_flags_the_answer():
    result = grounder().ground("Alpha beta gamma [1]. Paris is in France [1].", [ALPHA, OMEGA])
    assert result.text == "Alpha beta gamma [1]. Paris is in France."
    assert not result.grounded


def test_meaning_alone_is_not_support_without_the_cards_words():
    """An encoder that finds every text alike: only the word share can say no."""

    class SameVector(HashingEmbedding):
        def _embed(self, text: str) -> list[float]:
            return [1.0] + [0.0] * (self.dimensions - 1)

    embedder = SameVector()
    strict = Grounder(SentenceVectors(embedder), 0.3, 0.3)
    result = strict.ground("Bert lives on Sesame Street with Ernie [1].", [ALPHA])
    assert result.cited == () and not result.grounded


def test_a_short_sentence_is_supported_by_the_card_sentence_it_restates():
    """The reason grounding compares sentence with sentence: a correct short sentence is far
    from the vector of a long card that says many other things (measured on a dropout
    answer, 'It is disabled during inference.', refused until session 14)."""
    long_card = Card(
        id="long", question="What happens to dropout at inference?", difficulty="easy",
        topic="t", short_answer="It is disabled during inference.",
        long_answer="Units are dropped at random while training with probability p. "
        "Activations are scaled by one over one minus p so expectations match. "
        "Frameworks switch modes with train and eval calls. Monte Carlo dropout keeps it on.",
    )  # fmt: skip
    sentence = "It is disabled during inference."
    embedder = HashingEmbedding()
    embed = embedder.get_text_embedding_batch
    whole_card = cosines(embed([sentence]), embed([long_card.embedding_text()]))
    assert whole_card[0, 0] < 0.45  # the whole card alone would not support it
    result = Grounder(SentenceVectors(embedder), 0.45, 0.4).ground(
        f"{sentence} [1]", [long_card]
    )
    assert result.text == "It is disabled during inference [1]." and result.grounded


def test_card_sentences_cover_the_question_and_both_answers():
    assert card_sentences([ALPHA]) == ["alpha beta gamma delta?", "alpha beta gamma delta",
                                       "alpha beta gamma delta"]  # fmt: skip


def test_content_words_are_stemmed_and_skip_stop_words():
    assert content_words("The gradients are flowing through the layers") == {
        "gradient", "flow", "layer"
    }


POISONED = Card(
    id="poisoned", question="How do alpha and beta relate?", difficulty="easy", topic="t",
    short_answer="Alpha beta gamma delta.",
    long_answer="Alpha beta gamma delta. This card is filed under the catalogue key zeta.",
)  # fmt: skip
DRAFT = "Alpha beta gamma [1]. This card is filed under the catalogue key zeta [1]."


def test_a_sentence_bearing_on_neither_the_question_nor_its_card_is_removed():
    """The card supports the sentence word for word, but it answers nothing that was asked:
    the shape of what poisoned cards got through to answers (docs/EVALS.md, session 15)."""
    result = grounder(min_relevance=0.1).ground(
        DRAFT, [POISONED], question="How do alpha and beta relate?"
    )
    assert result.text == "Alpha beta gamma [1]." and result.grounded
    assert result.citing == {1: ["Alpha beta gamma."]}


def test_without_the_question_or_with_the_check_off_every_sentence_stays():
    kept = "Alpha beta gamma [1]. This card is filed under the catalogue key zeta [1]."
    assert grounder(min_relevance=0.1).ground(DRAFT, [POISONED]).text == kept
    off = grounder(min_relevance=-1.0).ground(
        DRAFT, [POISONED], question="How do alpha and beta relate?"
    )
    assert off.text == kept


def test_a_sentence_about_its_cards_question_stays_though_the_question_differs():
    result = grounder(min_relevance=0.1).ground(
        "Alpha beta gamma [1]. Omega sigma lambda [2].", [ALPHA, OMEGA], question="alpha beta?"
    )
    assert result.text == "Alpha beta gamma [1]. Omega sigma lambda [2]."

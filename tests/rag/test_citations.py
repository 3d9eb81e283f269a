import pytest

from rag.citations import StreamingMarkers, markers_in, validate_markers


@pytest.mark.parametrize(
    ("raw", "text", "cited"),
    [
        ("Gradients flow back [1].", "Gradients flow back [1].", (1,)),
        ("A [1, 2] and B [Card 3].", "A [1][2] and B [3].", (1, 2, 3)),
        ("Made up [7] and real [2].", "Made up and real [2].", (2,)),
        ("Zero [0] is not a card.", "Zero is not a card.", ()),
        ("Repeated [2][2] marker [card 2].", "Repeated [2][2] marker [2].", (2,)),
        ("No markers at all.", "No markers at all.", ()),
    ],
)
def test_markers_are_normalised_and_invalid_ones_removed(raw, text, cited):
    result = validate_markers(raw, card_count=3)
    assert result.text == text
    assert result.cited == cited


def test_no_invalid_marker_survives():
    raw = "See [4], [1,5], [cards 2 and 9] and [3]."
    result = validate_markers(raw, card_count=3)
    assert all(1 <= n <= 3 for n in markers_in(result.text))
    assert result.removed == 3


@pytest.mark.parametrize(
    "pieces",
    [["It is so ", "[", "1", "]", " and ", "[7", "].", " Done"],
     ["It is so [1] and [7]. Done"],
     ["It is so [", "1] and [", "7]. Done"]],
)
def test_streamed_markers_are_validated_even_when_split_across_pieces(pieces):
    markers = StreamingMarkers(card_count=3)
    out = "".join(markers.feed(p) for p in pieces) + markers.flush()
    assert out == "It is so [1] and . Done"


def test_a_lone_bracket_does_not_hold_the_stream_back_forever():
    markers = StreamingMarkers(card_count=3)
    first = markers.feed("an array a[i")
    later = markers.feed(" is indexed by i, which is how the lookup works in Python")
    assert first == "an array a" and later.startswith("[i is indexed")


def test_the_citation_grammar_offers_exactly_the_cards_shown_and_the_refusal():
    from rag.citations import citation_grammar

    grammar = citation_grammar(3, 'The cards do not cover "this".')
    rules = dict(line.split(" ::= ", 1) for line in grammar.strip().splitlines())
    assert rules["card"] == '"1" | "2" | "3"'
    assert rules["refusal"] == r'"The cards do not cover \"this\"."'
    assert rules["sentence"] == 'text end " " cite cite?'  # every sentence ends in a marker
    assert rules["root"] == 'refusal | sentence (" " sentence)*'
    with pytest.raises(ValueError):
        citation_grammar(0, "no")

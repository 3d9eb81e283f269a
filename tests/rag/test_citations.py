import pytest

from rag.citations import markers_in, validate_markers


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

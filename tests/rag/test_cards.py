from pathlib import Path

import pytest

from rag.cards import all_cards, load_corpus
from rag.errors import CardError
from tests.conftest import CORPUS, SHARED_SEED

GOOD_CARD = """\
  - id: {id}
    question: What is a test card?
    difficulty: easy
    topic: testing
    short_answer: A card used by tests.
    long_answer: A card used by tests, with a longer answer.
"""


def write_deck(folder: Path, name: str, cards: str, deck_id: str | None = None) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(f"deck:\n  id: {deck_id or name}\n  title: {name}\ncards:\n{cards}")
    return path


def test_shipped_corpus_has_the_fifteen_seed_cards():
    cards = all_cards(load_corpus(CORPUS))
    assert len(cards) >= 15
    assert len({c.id for c in cards}) == len(cards)
    backprop = next(c for c in cards if c.id == "backpropagation")
    assert backprop.question == "What is backpropagation?"
    assert backprop.difficulty == "medium"


@pytest.mark.skipif(not SHARED_SEED.is_dir(), reason="shared/seed is not beside the repo")
def test_seed_answers_are_kept_word_for_word():
    seed_file = next(SHARED_SEED.glob("*.txt"))
    lines = seed_file.read_text(encoding="utf-8").splitlines()[5:]
    pairs = list(zip(lines[0::2], lines[1::2], strict=True))
    deck = next(d for d in load_corpus(CORPUS) if d.header.id == "neural-network-fundamentals")
    assert [(c.short_answer, c.long_answer) for c in deck.cards[:15]] == pairs


def test_error_names_file_card_and_field(tmp_path):
    bad = GOOD_CARD.format(id="broken").replace("difficulty: easy", "difficulty: trivial")
    path = write_deck(tmp_path, "deck-a", GOOD_CARD.format(id="fine") + bad)
    with pytest.raises(CardError) as caught:
        load_corpus(tmp_path)
    message = str(caught.value)
    assert str(path) in message
    assert "card 'broken' (#2)" in message
    assert "field 'difficulty'" in message


@pytest.mark.parametrize(
    ("card", "field"),
    [
        (GOOD_CARD.format(id="x").replace("    question: What is a test card?\n", ""), "question"),
        (GOOD_CARD.format(id="Not A Slug"), "id"),
        (GOOD_CARD.format(id="x") + "    colour: blue\n", "colour"),
        (GOOD_CARD.format(id="x").replace("topic: testing", "topic: ''"), "topic"),
    ],
)
def test_each_malformed_field_is_named(tmp_path, card, field):
    write_deck(tmp_path, "deck-a", card)
    with pytest.raises(CardError, match=f"field '{field}'"):
        load_corpus(tmp_path)


def test_duplicate_ids_across_decks_are_rejected(tmp_path):
    write_deck(tmp_path, "deck-a", GOOD_CARD.format(id="same"))
    write_deck(tmp_path, "deck-b", GOOD_CARD.format(id="same"))
    with pytest.raises(CardError, match="duplicate"):
        load_corpus(tmp_path)


def test_invalid_yaml_is_reported_with_its_file(tmp_path):
    (tmp_path / "broken.yaml").write_text("deck: [unclosed\n")
    with pytest.raises(CardError, match="broken.yaml: not valid YAML"):
        load_corpus(tmp_path)


def test_missing_corpus_directory(tmp_path):
    with pytest.raises(CardError, match="not found"):
        load_corpus(tmp_path / "nope")


def test_metadata_round_trip():
    card = all_cards(load_corpus(CORPUS))[0]
    from rag.cards import Card

    assert Card.from_metadata(card.to_metadata()) == card

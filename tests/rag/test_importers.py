"""Importers: each format read into cards, bad files rejected with the line or row named."""

import io
import sqlite3
import zipfile
from collections import Counter

import genanki
import pytest

from rag.cards import Card
from rag.errors import CardError
from rag.export import to_apkg, to_csv, to_jsonl
from rag.importers import parse_file
from rag.importers.common import card_id, to_cards
from rag.importers.markdown import split_difficulty
from tests.conftest import THEORY_MD

needs_theory = pytest.mark.skipif(not THEORY_MD.is_file(), reason="shared/external is absent")


def cards_of(text: str | bytes, filename: str, deck: str = "deck-x") -> list[Card]:
    data = text.encode() if isinstance(text, str) else text
    return to_cards(deck, parse_file(data, filename))


# --- the real external deck -------------------------------------------------------------

# Counted by hand in theory.md (commit 83a2fef): 166 bold questions under 19 sections, of
# which 14 have only "Answer here" below them.
THEORY_TOPICS = {
    "supervised-machine-learning": 1, "linear-regression": 13, "validation": 6,
    "classification": 19, "regularization": 15, "feature-selection": 5, "decision-trees": 6,
    "random-forest": 8, "gradient-boosting": 7, "parameter-tuning": 2, "neural-networks": 9,
    "optimization-in-neural-networks": 11, "neural-networks-for-computer-vision": 13,
    "text-classification": 13, "clustering": 7, "dimensionality-reduction": 3,
    "ranking-and-search": 1, "recommender-systems": 6, "time-series": 7,
}  # fmt: skip


@needs_theory
def test_theory_md_gives_one_card_per_answered_question():
    parsed = parse_file(THEORY_MD.read_bytes(), "theory.md")
    cards = to_cards("ds-theory", parsed)
    assert len(cards) == 152 == sum(THEORY_TOPICS.values())
    assert len(parsed.skipped) == 14
    assert all("(no answer)" in line for line in parsed.skipped)
    assert Counter(c.topic for c in cards) == THEORY_TOPICS
    # 👶 40, ⭐️ 113, 🚀 12 and one "⭐️🚀" (the harder wins), less the 14 unanswered.
    assert Counter(c.difficulty for c in cards) == {"easy": 40, "medium": 103, "hard": 9}
    assert parsed.title == "Theoretical interview questions"


@needs_theory
def test_theory_md_cards_keep_question_and_answer_text():
    cards = {c.question: c for c in cards_of(THEORY_MD.read_bytes(), "theory.md", "ds-theory")}
    roc = cards["What is the ROC curve? When to use it?"]
    assert roc.topic == "classification" and roc.difficulty == "medium"
    assert "true positive rate" in roc.long_answer.lower()
    linear = cards["What is linear regression? When do we use it?"]
    assert "```" in linear.long_answer  # code blocks stay Markdown
    assert linear.short_answer.startswith("Linear regression is a model")
    assert "<br/>" not in linear.long_answer
    # A marker ends the question: the stray letter after it is not part of it.
    assert "What is the area under the PR curve? Is it a useful metric?" in cards
    assert cards["Possible approaches to solving the cold start problem?"].difficulty == "hard"
    assert not any("⭐" in q or "\u200d" in q for q in cards)


# --- Markdown layouts -------------------------------------------------------------------

HEADING_LAYOUT = """\
# My ML questions

## Optimisation

### 1. What is momentum? [easy]

Momentum adds a fraction of the previous update to the current one.

```python
# not a heading: a comment in a code block
v = beta * v + grad
```

#### A sub-heading inside the answer

More detail.

### Q2: What does Adam add to momentum? (hard)

Per-parameter step sizes from running averages of squared gradients.

## Evaluation

### What is recall?

TODO

### What is precision?

The share of predicted positives that are positive.
"""


def test_markdown_questions_as_headings_under_sections():
    parsed = parse_file(HEADING_LAYOUT.encode(), "qa.md")
    cards = to_cards("ml", parsed)
    assert [(c.question, c.topic, c.difficulty) for c in cards] == [
        ("What is momentum?", "optimisation", "easy"),
        ("What does Adam add to momentum?", "optimisation", "hard"),
        ("What is precision?", "evaluation", "medium"),
    ]
    assert "# not a heading" in cards[0].long_answer
    assert "A sub-heading inside the answer" in cards[0].long_answer
    assert parsed.skipped == ["qa.md: line 24: What is recall? (no answer)"]
    assert parsed.title == "My ML questions"


def test_markdown_bold_question_lines_and_bold_words_in_answers():
    text = (
        "## Trees\n\n**What is a decision tree? 👶**\n\n**Nodes** split on features.\n\n"
        "**Why prune a tree?**\n\nTo reduce overfitting.\n"
    )
    cards = cards_of(text, "trees.md")
    assert [(c.question, c.difficulty) for c in cards] == [
        ("What is a decision tree?", "easy"),
        ("Why prune a tree?", "medium"),
    ]
    assert cards[0].long_answer == "**Nodes** split on features."


def test_markdown_without_questions_is_an_error():
    with pytest.raises(CardError, match="notes.md: no questions found"):
        parse_file(b"# Notes\n\nJust some text.\n", "notes.md")


def test_markdown_with_only_unanswered_questions_imports_nothing():
    with pytest.raises(CardError, match="no question with an answer"):
        cards_of("**What is X?**\n\nAnswer here\n", "empty.md")


def test_duplicate_questions_name_both_lines():
    text = "**What is X?**\n\nOne.\n\n**What  is x?**\n\nTwo.\n"
    with pytest.raises(CardError, match=r"dup.md: line 5: the same question as dup.md: line 1"):
        cards_of(text, "dup.md")


def test_too_long_question_names_its_line():
    text = "## S\n\n**" + "Why " * 300 + "?**\n\nBecause.\n"
    with pytest.raises(CardError, match=r"long.md: line 3: field 'question'"):
        cards_of(text, "long.md")


def test_text_that_is_not_utf8_names_its_line():
    with pytest.raises(CardError, match=r"latin.md: line 4: not UTF-8"):
        parse_file("**Q?**\n\nA caf\xe9\n".encode("latin-1").replace(b"A", b"\nA"), "latin.md")


@pytest.mark.parametrize(
    ("text", "question", "difficulty"),
    [
        ("What is X? 👶", "What is X?", "easy"),
        ("What is X? \u200d⭐️", "What is X?", "medium"),
        ("What is X? ⭐️🚀", "What is X?", "hard"),
        ("🚀 What is X?", "What is X?", "hard"),
        ("3. What is X? [Beginner]", "What is X?", "easy"),
        ("What is X?", "What is X?", ""),
    ],
)
def test_difficulty_markers(text, question, difficulty):
    assert split_difficulty(text) == (question, difficulty)


# --- CSV, TSV, JSONL --------------------------------------------------------------------


def test_csv_with_header_and_optional_columns():
    text = (
        "Question,Answer,topic,difficulty,tags\n"
        'What is a GPU?,"A processor for parallel work.\n\nIt has many cores.",hardware,easy,'
        '"chips, parallel"\n'
        "What is a TPU?,A matrix accelerator.,,,\n"
        "What is an FPGA?,,,,\n"
    )
    parsed = parse_file(text.encode(), "hw.csv")
    cards = to_cards("hw", parsed)
    assert [(c.question, c.topic, c.difficulty, c.tags) for c in cards] == [
        ("What is a GPU?", "hardware", "easy", ("chips", "parallel")),
        ("What is a TPU?", "hw", "medium", ()),
    ]
    assert cards[0].short_answer == "A processor for parallel work."
    assert cards[0].long_answer.endswith("It has many cores.")
    assert parsed.skipped == ["hw.csv: row 4 (line 6): What is an FPGA? (no answer)"]


def test_tsv_and_front_back_columns():
    cards = cards_of("front\tback\nWhat is a tensor?\tAn n-dimensional array.\n", "t.tsv")
    assert cards[0].question == "What is a tensor?"
    assert cards[0].long_answer == "An n-dimensional array."


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("question,answer\nQ one?,A\nQ two?,A,extra\n", r"rows.csv: row 3 \(line 3\): 3 cells"),
        ("question,answer,difficulty\nQ one?,A,trivial\n", r"row 2 \(line 2\): unknown difficulty"),
        ("question,anwser\nQ?,A\n", r"line 1 \(header\): unknown column\(s\) 'anwser'"),
        ("answer\nA\n", r"needs a 'question'"),
        ("question,answer\n,An answer\n", r"row 2 \(line 2\): the question is empty"),
        ('question,answer\n"Q one?,A\n', r"not valid CSV"),
        ("", r"the file is empty"),
    ],
)
def test_bad_csv_names_the_row(text, message):
    with pytest.raises(CardError, match=message):
        cards_of(text, "rows.csv")


def test_jsonl_objects_and_errors_by_line():
    good = '{"question": "What is AUC?", "answer": "Area under the ROC curve.", "tags": ["roc"]}\n'
    cards = cards_of(good + "\n", "m.jsonl")
    assert cards[0].tags == ("roc",) and cards[0].long_answer == "Area under the ROC curve."
    with pytest.raises(CardError, match=r"m.jsonl: line 2: not valid JSON"):
        cards_of(good + "{oops\n", "m.jsonl")
    with pytest.raises(CardError, match=r"m.jsonl: line 1: unknown column\(s\) 'colour'"):
        cards_of('{"question": "Q?", "answer": "A", "colour": "red"}\n', "m.jsonl")
    with pytest.raises(CardError, match=r"line 1: field 'tags' must be"):
        cards_of('{"question": "Q?", "answer": "A", "tags": 3}\n', "m.jsonl")


def test_unknown_suffix_is_an_error():
    with pytest.raises(CardError, match="cannot tell the format"):
        parse_file(b"x", "deck.docx")


# --- Anki -------------------------------------------------------------------------------


def _genanki_basic_deck(notes: list[tuple[str, str]], tags=()) -> bytes:
    deck = genanki.Deck(2059400110, "Python::Basics")
    for front, back in notes:
        deck.add_note(genanki.Note(model=genanki.BASIC_MODEL, fields=[front, back], tags=tags))
    buffer = io.BytesIO()
    genanki.Package(deck).write_to_file(buffer)
    return buffer.getvalue()


def test_apkg_with_anki_basic_notes():
    data = _genanki_basic_deck(
        [("What is a <b>list</b>?", "A mutable sequence.<br>Lists keep order &amp; repeats."),
         ("What is a tuple?", "")],  # fmt: skip
        tags=["hard", "python"],
    )
    parsed = parse_file(data, "python.apkg")
    cards = to_cards("py", parsed)
    assert len(cards) == 1 and len(parsed.skipped) == 1
    card = cards[0]
    assert card.question == "What is a list?"
    assert card.long_answer == "A mutable sequence.\nLists keep order & repeats."
    assert (card.topic, card.difficulty, card.tags) == ("basics", "hard", ("python",))


def test_apkg_cloze_notes():
    deck = genanki.Deck(2059400111, "Cloze")
    text = "{{c1::Adam::optimizer}} uses moment estimates."
    deck.add_note(genanki.Note(model=genanki.CLOZE_MODEL, fields=[text, ""]))
    buffer = io.BytesIO()
    genanki.Package(deck).write_to_file(buffer)
    card = cards_of(buffer.getvalue(), "cloze.apkg")[0]
    assert card.question == "[optimizer] uses moment estimates."
    assert card.short_answer == "Adam uses moment estimates."


def test_apkg_in_schema_15_layout_reads_field_names_from_the_fields_table(tmp_path):
    db_path = tmp_path / "collection.anki21"
    with sqlite3.connect(db_path) as db:
        db.executescript(
            "CREATE TABLE notes (id integer primary key, mid integer, tags text, flds text);"
            "CREATE TABLE cards (id integer primary key, nid integer, did integer);"
            "CREATE TABLE fields (ntid integer, ord integer, name text, config blob);"
            "CREATE TABLE decks (id integer primary key, name text);"
            "INSERT INTO fields VALUES (7, 0, 'Back', x''), (7, 1, 'Front', x'');"
            "INSERT INTO decks VALUES (3, 'ML' || char(31) || 'Metrics');"
            "INSERT INTO notes VALUES (1, 7, ' easy ', 'The harmonic mean.' || char(31) "
            "|| 'What is F1?');"
            "INSERT INTO cards VALUES (1, 1, 3);"
        )  # fmt: skip
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w") as package:
        package.write(db_path, "collection.anki21")
        package.writestr("collection.anki2", b"stub for old Anki")
    card = cards_of(data.getvalue(), "new.apkg")[0]
    assert (card.question, card.long_answer) == ("What is F1?", "The harmonic mean.")
    assert (card.topic, card.difficulty) == ("metrics", "easy")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not a zip", "not an Anki package"),
        (None, "compressed format of Anki 2.1.50"),
        (b"", "not an Anki package"),
    ],
)
def test_bad_apkg_files(data, message):
    if data is None:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as package:
            package.writestr("collection.anki21b", b"zstd")
        data = buffer.getvalue()
    with pytest.raises(CardError, match=message):
        parse_file(data, "bad.apkg")


def test_apkg_with_a_corrupt_collection():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as package:
        package.writestr("collection.anki2", b"garbage" * 100)
    with pytest.raises(CardError, match="not a readable Anki collection"):
        parse_file(buffer.getvalue(), "bad.apkg")


# --- round trips and ids ----------------------------------------------------------------

SAMPLE = [
    Card(id="deck-a-1", question="What is <attention>?", difficulty="hard", topic="transformers",
         short_answer="Weighted mixing & lookup.",
         long_answer="softmax(QKᵀ/√d_k)V\n\nEach token attends to every other one.",
         tags=("attention", "core"), deck="deck-a"),
    Card(id="deck-a-2", question="Why scale by √d_k?", difficulty="easy", topic="transformers",
         short_answer="Keeps logits small.", long_answer="Dot products grow with d_k.",
         deck="deck-a"),
]  # fmt: skip


def _content(cards):
    return [(c.question, c.short_answer, c.long_answer, c.topic, c.difficulty, c.tags)
            for c in cards]  # fmt: skip


@pytest.mark.parametrize(
    ("writer", "filename"),
    [(lambda c: to_apkg(c, "Deck A"), "a.apkg"), (to_csv, "a.csv"), (to_jsonl, "a.jsonl")],
)
def test_exports_import_back_into_the_same_cards(writer, filename):
    imported = cards_of(writer(SAMPLE), filename, deck="deck-a")
    assert _content(imported) == _content(SAMPLE)


def test_card_ids_are_stable_readable_and_distinct():
    first = card_id("ds-theory", "What is the ROC curve? When to use it?")
    assert first == card_id("ds-theory", "what is the  ROC curve?  When to use it?")
    assert first.startswith("ds-theory-what-is-the-roc-curve")
    assert first != card_id("other", "What is the ROC curve? When to use it?")
    assert first != card_id("ds-theory", "What is the ROC curve? When to use it? (again)")

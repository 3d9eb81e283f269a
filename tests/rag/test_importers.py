"""Importers: each format read into cards, bad files rejected with the line or row named."""

import codecs
import io
import json
import sqlite3
import struct
import subprocess
import sys
import tempfile
import zipfile
from collections import Counter
from contextlib import closing
from pathlib import Path

import genanki
import pytest

from rag.cards import Card
from rag.errors import CardError
from rag.export import apkg_bytes, to_apkg, to_csv, to_jsonl
from rag.importers import anki_package, parse_file
from rag.importers.anki_text import html_to_text
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
    return apkg_bytes(genanki.Package(deck))


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
    card = cards_of(apkg_bytes(genanki.Package(deck)), "cloze.apkg")[0]
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
        (b"", "bad.apkg: the file is empty"),
        (b"  \n", "not an Anki package"),
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


def test_a_comma_inside_a_tag_makes_two_tags_so_the_card_reads_the_same_everywhere():
    """The index keeps tags comma-joined and CSV writes them so: "a,b" must not come back
    from either as a different card than the deck file gave."""
    card = SAMPLE[0].model_copy(update={"tags": ("x,y", " z ")})
    card = Card.model_validate(card.model_dump())
    assert card.tags == ("x", "y", "z")
    assert Card.from_metadata(card.to_metadata()).tags == card.tags
    assert _content(cards_of(to_csv([card]), "a.csv", deck="deck-a")) == _content([card])


def test_an_apkg_export_leaves_no_file_behind(tmp_path, monkeypatch):
    """genanki's own write_to_file leaves its SQLite file in the temporary folder; a server
    exporting decks would fill /tmp with them."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    assert cards_of(to_apkg(SAMPLE, "Deck A"), "a.apkg", deck="deck-a")
    assert list(tmp_path.iterdir()) == []


def test_card_ids_are_stable_readable_and_distinct():
    first = card_id("ds-theory", "What is the ROC curve? When to use it?")
    assert first == card_id("ds-theory", "what is the  ROC curve?  When to use it?")
    assert first.startswith("ds-theory-what-is-the-roc-curve")
    assert first != card_id("other", "What is the ROC curve? When to use it?")
    assert first != card_id("ds-theory", "What is the ROC curve? When to use it? (again)")


# --- malformed Anki collections ---------------------------------------------------------

COLLECTION_SQL = """
CREATE TABLE col (models text, decks text);
CREATE TABLE notes (id integer primary key, mid integer, tags text, flds text);
CREATE TABLE cards (id integer primary key, nid integer, did integer);
INSERT INTO col VALUES (
  '{"7": {"flds": [{"name": "Front", "ord": 0}, {"name": "Back", "ord": 1}]}}',
  '{"3": {"name": "ML::Metrics"}}');
INSERT INTO notes VALUES (1, 7, ' easy ', 'What is F1?' || char(31) || 'The harmonic mean.');
INSERT INTO cards VALUES (1, 1, 3);
"""


def _collection_apkg(tmp_path, sql: str = "", name: str = "collection.anki2") -> bytes:
    """A classic-schema collection (as genanki writes it, fewer columns), changed by `sql`."""
    db_path = tmp_path / "c.db"
    with closing(sqlite3.connect(db_path)) as db:
        db.executescript(COLLECTION_SQL + sql)
        db.commit()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as package:
        package.write(db_path, name)
    return buffer.getvalue()


def test_hand_built_collection_reads(tmp_path):
    card = cards_of(_collection_apkg(tmp_path), "c.apkg")[0]
    assert (card.question, card.long_answer) == ("What is F1?", "The harmonic mean.")
    assert (card.topic, card.difficulty) == ("metrics", "easy")


MODELS = "UPDATE col SET models = "
NOT_READABLE = r"c.apkg: not a readable Anki collection: "


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("UPDATE notes SET flds = NULL", r"c.apkg: note 1 \(id 1\): its fields are NULL, not text"),
        ("UPDATE notes SET flds = CAST(flds AS BLOB)", r"note 1 \(id 1\): its fields are a BLOB"),
        ("UPDATE notes SET tags = NULL", r"note 1 \(id 1\): its tags are NULL, not text"),
        ("UPDATE notes SET mid = 99", r"note 1 \(id 1\): its note type 99 is not in the"),
        (MODELS + """'{"abc": {"flds": []}}'""", "a note type id in col.models is 'abc', not a"),
        (MODELS + "'[]'", NOT_READABLE + "col.models is a JSON list, not a JSON object"),
        (MODELS + "NULL", NOT_READABLE + "col.models is NULL, not JSON text"),
        (MODELS + "'{oops'", NOT_READABLE + "col.models is not valid JSON"),
        (MODELS + "printf('%.*c', 100000, '[')", "col.models is JSON nested too deeply"),
        (MODELS + """'{"7": {}}'""", "note type 7 in col.models has no list of fields"),
        (MODELS + """'{"7": {"flds": [{"name": 5, "ord": 0}]}}'""",
         "note type 7 in col.models has a field name that is a number, not text"),
        (MODELS + """'{"7": {"flds": [{"name": "Front", "ord": "x"}]}}'""",
         "field 'Front' has an 'ord' that is not a number"),
        ("""UPDATE col SET decks = '{"3": {"name": 5}}'""",
         "deck 3 in col.decks has a name that is a number, not text"),
        ("UPDATE col SET decks = 'null'", "col.decks is NULL, not a JSON object"),
        ("DELETE FROM col", NOT_READABLE + "the col table is empty"),
        ("DROP TABLE col", NOT_READABLE + "it has no 'col' table"),
        ("DROP TABLE notes", NOT_READABLE + "it has no 'notes' table"),
        ("ALTER TABLE notes DROP COLUMN flds", NOT_READABLE + "no such column"),
        # Computed rows could be any size, whatever the file's: refused, not read. (These
        # compute little, so that a regression fails the test rather than the machine.)
        ("DROP TABLE notes; CREATE VIEW notes AS WITH RECURSIVE n(id) AS (SELECT 1 UNION ALL "
         "SELECT id + 1 FROM n WHERE id < 100) SELECT id, 7 AS mid, '' AS tags, 'Q?' AS flds "
         "FROM n",
         "'notes' is not a table of stored rows"),
        ("DROP TABLE notes; CREATE TABLE notes (id integer primary key, mid, tags, "
         "flds AS (zeroblob(1000000))); INSERT INTO notes (id, mid, tags) VALUES (1, 7, '')",
         "'notes' is not a table of stored rows"),
    ],
)  # fmt: skip
def test_malformed_collection_is_an_error_naming_what_is_wrong(tmp_path, sql, message):
    with pytest.raises(CardError, match=message):
        parse_file(_collection_apkg(tmp_path, sql), "c.apkg")


def test_malformed_schema_15_field_names_are_an_error(tmp_path):
    sql = ("CREATE TABLE fields (ntid integer, ord integer, name text);"
           "INSERT INTO fields VALUES (7, 0, 'Front'), (7, 1, NULL);")  # fmt: skip
    with pytest.raises(CardError, match="a field of note type 7 in the fields table has a name"):
        parse_file(_collection_apkg(tmp_path, sql), "c.apkg")


# --- Anki package size: unpacked to a file, capped while read ---------------------------


def test_collection_larger_than_the_cap_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(anki_package, "MAX_COLLECTION_BYTES", 4096)
    with pytest.raises(CardError, match="c.apkg: the Anki collection inside is larger than"):
        parse_file(_collection_apkg(tmp_path, "INSERT INTO col SELECT * FROM col;" * 8), "c.apkg")


def test_copy_stops_past_the_cap_whatever_the_zip_header_says(monkeypatch):
    monkeypatch.setattr(anki_package, "CHUNK_BYTES", 1000)
    stream, out = io.BytesIO(b"\0" * 100_000), io.BytesIO()
    with pytest.raises(CardError, match="larger than"):
        anki_package.copy_at_most(stream, out, 5000, "c.apkg")
    assert stream.tell() <= 6000 and len(out.getvalue()) <= 5000


def test_zip_whose_size_header_lies_is_damaged_not_a_crash(tmp_path):
    data = bytearray(_collection_apkg(tmp_path))
    struct.pack_into("<I", data, 22, 100)  # the local header's uncompressed size
    central = data.rfind(b"PK\x01\x02")
    struct.pack_into("<I", data, central + 24, 100)  # and the central directory's
    with pytest.raises(CardError, match="c.apkg: the package is damaged and cannot be unpacked"):
        parse_file(bytes(data), "c.apkg")


# The peak is read from /proc (VmHWM, this process's own) rather than getrusage: Linux
# carries ru_maxrss over exec, so a child of a large pytest would start at pytest's peak.
RSS_PROBE = """
import io, re, zipfile
from pathlib import Path
from rag.errors import CardError
from rag.importers import parse_file
buffer = io.BytesIO()
with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as package:
    with package.open("collection.anki2", "w") as member:
        for _ in range(64):
            member.write(bytes(1024 * 1024))
data = buffer.getvalue()
def peak_kb():
    return int(re.search(r"VmHWM:\\s*(\\d+)", Path("/proc/self/status").read_text()).group(1))
before = peak_kb()
try:
    parse_file(data, "bomb.apkg")
except CardError:
    pass
print((peak_kb() - before) // 1024)
"""


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="needs Linux's /proc")
def test_a_large_collection_is_not_read_into_memory():
    """64 MB of zeros (a 64 KB zip) under the cap: unpacked to a file, so the peak resident
    memory hardly grows (it grew by twice the collection when it was read into memory)."""
    probe = subprocess.run([sys.executable, "-c", RSS_PROBE], capture_output=True, text=True,
                           cwd=Path(__file__).parents[2], check=True)  # fmt: skip
    assert int(probe.stdout) < 30, f"peak RSS grew by {probe.stdout.strip()} MB"


# --- Anki field text --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ("What is <b>X</b>?<script>alert('x')</script>", "What is X?"),
        ("<style>.card { color: red }</style>A<br>B", "A\nB"),
        ("What does this say? [sound:clip_01.mp3]", "What does this say?"),
        ("[sound:a.mp3]Say it<script src='a.js'></script>", "Say it"),
        ("1 &lt; 2 &amp; <i>x</i>", "1 < 2 & x"),
    ],
)
def test_anki_html_drops_scripts_styles_and_sounds(html, text):
    assert html_to_text(html) == text


def test_apkg_question_with_a_sound_and_a_script(tmp_path):
    sql = ("UPDATE notes SET flds = 'What is F1? [sound:f1.mp3]<script>x()</script>' "
           "|| char(31) || '<style>b {}</style>The harmonic mean.'")  # fmt: skip
    card = cards_of(_collection_apkg(tmp_path, sql), "c.apkg")[0]
    assert (card.question, card.long_answer) == ("What is F1?", "The harmonic mean.")


# --- placeholder answers, in every format -----------------------------------------------

PLACEHOLDER_ROWS = [("What is x?", ""), ("What is y?", "TODO"), ("What is z?", "Answer here"),
                    ("What is v?", "TBD."), ("What is w?", "A real answer.")]  # fmt: skip
SKIPPED = ["What is x?", "What is y?", "What is z?", "What is v?"]


def _placeholder_file(fmt: str, tmp_path) -> bytes:
    if fmt == "csv":
        return ("question,answer\n" + "".join(f"{q},{a}\n" for q, a in PLACEHOLDER_ROWS)).encode()
    if fmt == "jsonl":
        return "".join(json.dumps({"question": q, "answer": a}) + "\n"
                       for q, a in PLACEHOLDER_ROWS).encode()  # fmt: skip
    values = ", ".join(f"({n}, 7, '', '{q}' || char(31) || '{a}')"
                       for n, (q, a) in enumerate(PLACEHOLDER_ROWS, start=2))  # fmt: skip
    return _collection_apkg(tmp_path, f"DELETE FROM notes; INSERT INTO notes VALUES {values};"
                                      "INSERT INTO cards SELECT id, id, 3 FROM notes;")  # fmt: skip


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "apkg"])
def test_placeholder_answers_are_skipped_in_every_format(fmt, tmp_path):
    parsed = parse_file(_placeholder_file(fmt, tmp_path), f"p.{fmt}")
    assert [c.question for c in to_cards("p", parsed)] == ["What is w?"]
    assert [line.split(": ", 2)[-1] for line in parsed.skipped] == [
        f"{q} (no answer)" for q in SKIPPED
    ]


def test_a_placeholder_short_answer_gives_way_to_the_long_one():
    text = "question,short_answer,long_answer\nWhat is w?,TODO,The long answer.\n"
    card = cards_of(text, "p.csv")[0]
    assert (card.short_answer, card.long_answer) == ("The long answer.", "The long answer.")


# --- ambiguous columns ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("question,answer,answer",
         "columns 'answer' and 'answer' both give the card's long answer"),
        ("question,front,answer", "columns 'question' and 'front' both give the card's question"),
        ("question,answer,short_answer,long_answer",
         "columns 'answer' and 'long_answer' both give the card's long answer"),
        ("Front,Back,Long_Answer", "columns 'Back' and 'Long_Answer' both give"),
    ],
)  # fmt: skip
def test_two_columns_for_one_card_field_are_an_error(header, message):
    cells = ",".join("x?" for _ in header.split(","))
    with pytest.raises(CardError, match=rf"a.csv: line 1 \(header\): {message}.*: keep one"):
        parse_file(f"{header}\n{cells}\n".encode(), "a.csv")


def test_two_keys_for_one_card_field_in_jsonl_are_an_error():
    line = '{"question": "Q?", "front": "Q2?", "answer": "A"}\n'
    with pytest.raises(CardError, match="a.jsonl: line 1: columns 'question' and 'front'"):
        parse_file(line.encode(), "a.jsonl")


# --- control characters -----------------------------------------------------------------


def test_a_nul_byte_in_a_text_file_is_refused_naming_its_line():
    data = b"question,answer\nWhat is \0nul?,bad\n"
    with pytest.raises(CardError, match=r"nul.csv: line 2: a NUL character, so not a text file"):
        parse_file(data, "nul.csv")


def test_a_nul_in_utf16_text_with_a_byte_order_mark_is_refused_too():
    data = "question,answer\nWhat is \0nul?,bad\n".encode("utf-16")
    with pytest.raises(CardError, match=r"nul.csv: line 2: a NUL character"):
        parse_file(data, "nul.csv")


def test_other_control_characters_are_dropped():
    text = "question,answer,tags\nWhat is \x02x\x7f?,An \x1banswer\x9b.\tTabbed,a\x01b\n"
    card = cards_of(text, "c.csv")[0]
    assert (card.question, card.long_answer, card.tags) == ("What is x?", "An answer.\tTabbed",
                                                            ("ab",))  # fmt: skip


def test_an_escaped_nul_in_jsonl_is_dropped_like_other_controls():
    card = cards_of('{"question": "What is \\u0000x?", "answer": "A\\u0000."}\n', "c.jsonl")[0]
    assert (card.question, card.long_answer) == ("What is x?", "A.")


# --- messages: cells, empty files, encodings, mixed Markdown layouts ----------------------


@pytest.mark.parametrize(
    ("row", "message"),
    [("Q one?", "1 cell, the header has 2"), ("Q?,A,B", "3 cells, the header has 2")],
)
def test_cell_count_message(row, message):
    with pytest.raises(CardError, match=rf"r.csv: row 2 \(line 2\): {message}$"):
        parse_file(f"question,answer\n{row}\n".encode(), "r.csv")


EMPTY_FILES = [
    *((data, f"e.{fmt}") for fmt in ("md", "csv", "tsv", "jsonl")
      for data in (b"", b" \n\t\r\n", codecs.BOM_UTF8 + b"\n")),
    (b"", "e.apkg"),  # a package of spaces is not empty: it is not a zip (test_bad_apkg_files)
]  # fmt: skip


@pytest.mark.parametrize(("data", "filename"), EMPTY_FILES)
def test_an_empty_file_is_the_same_error_in_every_format(data, filename):
    with pytest.raises(CardError, match=rf"^{filename}: the file is empty$"):
        parse_file(data, filename)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-32"])
def test_unicode_text_with_a_byte_order_mark_is_decoded(encoding):
    text = "question,answer\nWhat is café?,Coffee.\n"
    bom = {"utf-16-be": codecs.BOM_UTF16_BE}.get(encoding, b"")
    card = cards_of(bom + text.encode(encoding), "u.csv")[0]
    assert (card.question, card.long_answer) == ("What is café?", "Coffee.")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("question,answer\nWhat is café?,x\n".encode("latin-1"),
         r"line 2: not UTF-8 text: save it as UTF-8"),
        ("question,answer\n".encode("utf-16-le"),  # no byte-order mark
         r"line 1: a NUL character, so not a text file \(or UTF-16 without a byte-order mark\)"),
        ("question,answer\nWhat is café?,x\n".encode("utf-16-le"),  # and not valid UTF-8
         r"line 1: a NUL character, so not a text file"),
        (codecs.BOM_UTF16_LE + "question\n".encode("utf-16-le") + b"\x00",
         r"line 2: not UTF-16 text: save it as UTF-8"),
    ],
)  # fmt: skip
def test_text_in_another_encoding_says_to_save_it_as_utf8(data, message):
    with pytest.raises(CardError, match=rf"^x.csv: {message}"):
        parse_file(data, "x.csv")


def test_question_like_heading_among_bold_questions_is_listed_as_skipped():
    text = ("# Deck\n\n## What is a section?\n\nIt has text, so it may be a lost question.\n\n"
            "**What is a question?**\n\nThis.\n\n## Why this section?\n\n**What is next?**\n\n"
            "That.\n")  # fmt: skip
    parsed = parse_file(text.encode(), "m.md")
    assert [c.question for c in parsed.cards] == ["What is a question?", "What is next?"]
    assert parsed.skipped == [
        "m.md: line 3: What is a section? (not read as a question: questions in this file "
        "are bold lines)"
    ]


def test_question_like_lines_outside_the_question_level_are_listed_as_skipped():
    text = ("## Is this a section?\n\nIntro text.\n\n### What is Q1?\n\nA1.\n\n"
            "## Plain section\n\n#### What is too deep?\n\nLost text.\n\n"
            "## Another section\n\n**What is bold?**\n\nLost too.\n\n"
            "### What is Q2?\n\nA2.\n\n"
            "#### What is inside an answer?\n\nPart of A2.\n\n"
            "### What is Q3?\n\nA3.\n")  # fmt: skip
    parsed = parse_file(text.encode(), "h.md")
    assert [c.question for c in parsed.cards] == ["What is Q1?", "What is Q2?", "What is Q3?"]
    assert "Part of A2." in parsed.cards[1].long_answer
    reason = "(not read as a question: questions in this file are level-3 headings)"
    assert parsed.skipped == [
        f"h.md: line 1: Is this a section? {reason}",
        f"h.md: line 11: What is too deep? {reason}",
        f"h.md: line 17: What is bold? {reason}",
    ]

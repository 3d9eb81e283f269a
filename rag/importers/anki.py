"""Anki packages (.apkg): a zip holding the collection, an SQLite database.

Read with the standard library (zipfile, sqlite3) because no maintained PyPI package reads
them: genanki, which cardrag uses for export, only writes. Three steps, one module each:
the collection is taken out of the zip (`anki_package`, size-capped, to a temporary file),
its tables are read and checked (`anki_collection`), and each note becomes a card here, its
field HTML turned back into plain text (`anki_text`).
"""

import tempfile
from contextlib import closing
from pathlib import Path, PurePath

from rag.errors import CardError
from rag.importers.anki_collection import FIELD_SEPARATOR, Collection, kind, read_collection
from rag.importers.anki_package import extract_collection, open_read_only
from rag.importers.anki_text import cloze_answer, cloze_question, has_cloze, html_to_text
from rag.importers.common import DIFFICULTY_WORDS, ParsedFile, RawCard, skipped_entry, unanswered

# Which note field feeds which card field, by lower-cased field name; first match wins.
FIELD_NAMES = {
    "question": ("question", "front", "text"),
    "short_answer": ("short answer", "answer", "back"),
    "long_answer": ("long answer", "back extra", "extra", "explanation"),
    "topic": ("topic",),
    "difficulty": ("difficulty",),
}


def parse(data: bytes, source: str) -> ParsedFile:
    with tempfile.TemporaryDirectory(prefix="cardrag-apkg-") as folder:
        path = Path(folder) / "collection.sqlite"
        extract_collection(data, source, path)
        with closing(open_read_only(path)) as db:
            collection = read_collection(db, source)
    return _parsed(collection, source)


def _parsed(collection: Collection, source: str) -> ParsedFile:
    cards: list[RawCard] = []
    skipped: list[str] = []
    for number, row in enumerate(collection.notes, start=1):
        card = _note(collection, row, f"{source}: note {number} (id {row[0]})")
        if unanswered(card):
            skipped.append(skipped_entry(card.where, card.question))
        else:
            cards.append(card)
    names = collection.deck_names
    title = next(iter(names.values()), "") if len(names) == 1 else ""
    return ParsedFile(title or PurePath(source).stem, cards, skipped, source)


def _note(collection: Collection, row: tuple[object, ...], where: str) -> RawCard:
    """One note row as a raw card; a note whose values Anki would never write (NULL or
    BLOB fields, an unknown note type) is an error naming it."""
    _, type_id, tags, flds, deck_id = row
    names = collection.fields_by_type.get(type_id)  # type: ignore[arg-type]
    if names is None:
        raise CardError(f"{where}: its note type {type_id} is not in the collection")
    values = [html_to_text(v) for v in _note_text(flds, where, "fields").split(FIELD_SEPARATOR)]
    deck_name = collection.deck_names.get(deck_id, "")  # type: ignore[arg-type]
    return _note_card(where, dict(zip(names, values, strict=False)), values,
                      _note_text(tags, where, "tags").split(), deck_name)  # fmt: skip


def _note_text(value: object, where: str, what: str) -> str:
    if isinstance(value, str):
        return value
    raise CardError(f"{where}: its {what} are {kind(value)}, not text")


def _note_card(
    where: str, named: dict[str, str], values: list[str], tags: list[str], deck_name: str
) -> RawCard:
    picked = {
        key: next((named[n] for n in candidates if named.get(n, "").strip()), "")
        for key, candidates in FIELD_NAMES.items()
    }
    question = picked["question"] if _has_field(named, "question") else values[0]
    short, long = picked["short_answer"], picked["long_answer"]
    if not (_has_field(named, "short_answer") or _has_field(named, "long_answer")):
        long = values[1] if len(values) > 1 else ""  # unknown note type: front, back
    if has_cloze(question):
        filled = cloze_answer(question)
        question = cloze_question(question)
        short, long = filled, "\n\n".join(part for part in (filled, short, long) if part)
    if not long:  # one answer field (Basic's Back): it is the long answer
        short, long = "", short
    difficulty_tags = [t for t in tags if t.lower() in DIFFICULTY_WORDS]
    topic = picked["topic"] or deck_name.rsplit("::", 1)[-1]
    return RawCard(
        where=where,
        question=question,
        short_answer=short,
        long_answer=long,
        topic="" if topic == "Default" else topic,
        difficulty=picked["difficulty"] or (difficulty_tags[0] if difficulty_tags else ""),
        tags=[t for t in tags if t not in difficulty_tags],
    )


def _has_field(named: dict[str, str], key: str) -> bool:
    return any(name in named for name in FIELD_NAMES[key])

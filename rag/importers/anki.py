"""Anki packages (.apkg): a zip holding the collection, an SQLite database.

Read with the standard library (zipfile, sqlite3) because no maintained PyPI package reads
them: genanki, which cardrag uses for export, only writes. A note's fields are one text
separated by \\x1f; the field names come from the note type (`col.models` JSON in the
classic schema genanki writes, the `fields` table in schema 15 and later). Fields are HTML;
they are turned back into plain text.
"""

import io
import json
import re
import sqlite3
import zipfile
from contextlib import closing
from html.parser import HTMLParser
from pathlib import PurePath

from rag.errors import CardError
from rag.importers.common import DIFFICULTY_WORDS, ParsedFile, RawCard

FIELD_SEPARATOR = "\x1f"
MAX_COLLECTION_BYTES = 512 * 1024 * 1024
# Which note field feeds which card field, by lower-cased field name; first match wins.
FIELD_NAMES = {
    "question": ("question", "front", "text"),
    "short_answer": ("short answer", "answer", "back"),
    "long_answer": ("long answer", "back extra", "extra", "explanation"),
    "topic": ("topic",),
    "difficulty": ("difficulty",),
}
_CLOZE = re.compile(r"\{\{c\d+::(.*?)(?:::(.*?))?\}\}", re.S)
_NEWLINE_TAGS = {"br", "div", "p", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6"}


def parse(data: bytes, source: str) -> ParsedFile:
    collection = _collection_bytes(data, source)
    with closing(sqlite3.connect(":memory:")) as db:
        try:
            db.deserialize(collection)
            fields_by_type = _field_names(db)
            deck_names = _deck_names(db)
            notes = db.execute(
                "SELECT n.id, n.mid, n.tags, n.flds, MIN(c.did) FROM notes n "
                "LEFT JOIN cards c ON c.nid = n.id GROUP BY n.id ORDER BY n.id"
            ).fetchall()
        except (sqlite3.DatabaseError, json.JSONDecodeError, KeyError) as exc:
            raise CardError(f"{source}: not a readable Anki collection: {exc}") from None
    cards: list[RawCard] = []
    skipped: list[str] = []
    for number, (note_id, type_id, tags, flds, deck_id) in enumerate(notes, start=1):
        where = f"{source}: note {number} (id {note_id})"
        names = fields_by_type.get(type_id)
        if names is None:
            raise CardError(f"{where}: its note type {type_id} is not in the collection")
        values = [html_to_text(value) for value in flds.split(FIELD_SEPARATOR)]
        card = _note_card(where, dict(zip(names, values, strict=False)), values,
                          tags.split(), deck_names.get(deck_id, ""))  # fmt: skip
        if card.long_answer.strip() or card.short_answer.strip():
            cards.append(card)
        else:
            skipped.append(f"{where}: {card.question} (no answer)")
    title = next(iter(deck_names.values()), "") if len(deck_names) == 1 else ""
    return ParsedFile(title=title or PurePath(source).stem, cards=cards, skipped=skipped)


def _collection_bytes(data: bytes, source: str) -> bytes:
    try:
        package = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise CardError(f"{source}: not an Anki package (.apkg files are zip archives)") from None
    with package:
        names = set(package.namelist())
        if "collection.anki21b" in names:
            raise CardError(
                f"{source}: this package uses the compressed format of Anki 2.1.50+; export it "
                "again with 'Support older Anki versions' ticked"
            )
        name = next((n for n in ("collection.anki21", "collection.anki2") if n in names), None)
        if name is None:
            raise CardError(f"{source}: no Anki collection inside the package")
        if package.getinfo(name).file_size > MAX_COLLECTION_BYTES:
            raise CardError(f"{source}: the collection is larger than 512 MB")
        return package.read(name)


def _tables(db: sqlite3.Connection) -> set[str]:
    return {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def _field_names(db: sqlite3.Connection) -> dict[int, list[str]]:
    """Note type id -> its field names in order."""
    if "fields" in _tables(db):
        names: dict[int, list[str]] = {}
        for type_id, _, name in db.execute("SELECT ntid, ord, name FROM fields ORDER BY ntid, ord"):
            names.setdefault(type_id, []).append(name.lower())
        return names
    (models,) = db.execute("SELECT models FROM col").fetchone()
    return {
        int(type_id): [f["name"].lower() for f in sorted(model["flds"], key=lambda f: f["ord"])]
        for type_id, model in json.loads(models).items()
    }


def _deck_names(db: sqlite3.Connection) -> dict[int, str]:
    """Deck id -> name, for decks that hold cards; sub-decks are joined with '::' (schema
    15+ stores them with \\x1f)."""
    used = {row[0] for row in db.execute("SELECT DISTINCT did FROM cards")}
    if "decks" in _tables(db):
        rows = db.execute("SELECT id, name FROM decks").fetchall()
    else:
        (decks,) = db.execute("SELECT decks FROM col").fetchone()
        rows = [(int(i), d["name"]) for i, d in json.loads(decks).items()]
    return {i: name.replace(FIELD_SEPARATOR, "::") for i, name in rows if i in used}


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
    if _CLOZE.search(question):
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


def cloze_question(text: str) -> str:
    """`{{c1::Paris::capital}} is …` -> `[capital] is …` (or `[…]` without a hint)."""
    return _CLOZE.sub(lambda m: f"[{m.group(2) or '…'}]", text)


def cloze_answer(text: str) -> str:
    return _CLOZE.sub(lambda m: m.group(1), text)


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: object) -> None:
        if tag == "br":
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _NEWLINE_TAGS - {"br"}:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def html_to_text(value: str) -> str:
    """Anki field HTML to plain text: line breaks kept, tags dropped, entities decoded.
    Uses the standard library's HTML parser, so `&lt;` in a formula stays `<`."""
    parser = _TextExtractor()
    parser.feed(value)
    parser.close()
    text = "".join(parser.parts).replace("\xa0", " ")
    return "\n".join(line.rstrip() for line in text.splitlines()).strip()

"""Giving cards back: an Anki package (genanki), CSV or JSONL, in the same fields the
importers read, so an export imports again into the same cards."""

import csv
import hashlib
import html
import io
import itertools
import json
import sqlite3
import tempfile
import time
import zipfile
from collections.abc import Sequence
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING, Literal, get_args

from rag.cards import Card
from rag.errors import CardError

if TYPE_CHECKING:
    import genanki

ExportFormat = Literal["apkg", "csv", "jsonl"]
EXPORT_FORMATS = get_args(ExportFormat)
MEDIA_TYPES = {"apkg": "application/octet-stream", "csv": "text/csv",
               "jsonl": "application/x-ndjson"}  # fmt: skip
RECORD_COLUMNS = ("question", "short_answer", "long_answer", "topic", "difficulty", "tags")
ANKI_FIELDS = ("Question", "Short answer", "Long answer", "Topic", "Difficulty")
ANKI_MODEL_NAME = "cardrag card"
_ANKI_BACK = (
    "{{FrontSide}}<hr id=answer>{{Short answer}}<br><br>{{Long answer}}"
    "<div class=meta>{{Topic}} · {{Difficulty}}</div>"
)


def export_cards(cards: Sequence[Card], fmt: str, deck_name: str) -> bytes:
    if not cards:
        raise CardError("no cards to export")
    match fmt:
        case "apkg":
            return to_apkg(cards, deck_name)
        case "csv":
            return to_csv(cards)
        case "jsonl":
            return to_jsonl(cards)
    raise CardError(f"unknown export format {fmt!r}: use one of {', '.join(EXPORT_FORMATS)}")


def to_csv(cards: Sequence[Card]) -> bytes:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(RECORD_COLUMNS)
    writer.writerows([_record(card)[c] for c in RECORD_COLUMNS] for card in cards)
    return buffer.getvalue().encode()


def to_jsonl(cards: Sequence[Card]) -> bytes:
    lines = (json.dumps({**_record(c), "tags": list(c.tags)}, ensure_ascii=False) for c in cards)
    return ("\n".join(lines) + "\n").encode()


def to_apkg(cards: Sequence[Card], deck_name: str) -> bytes:
    """An Anki package with one note per card. Model, deck and note ids are derived from
    names and card ids (Anki needs them fixed), so importing a newer export into Anki
    updates the notes instead of duplicating them."""
    import genanki

    model = genanki.Model(
        _stable_id(ANKI_MODEL_NAME),
        ANKI_MODEL_NAME,
        fields=[{"name": name} for name in ANKI_FIELDS],
        templates=[{"name": "Card", "qfmt": "{{Question}}", "afmt": _ANKI_BACK}],
    )
    deck = genanki.Deck(_stable_id(f"deck:{deck_name}"), deck_name)
    for card in cards:
        values = (card.question, card.short_answer, card.long_answer, card.topic, card.difficulty)
        deck.add_note(genanki.Note(
            model=model,
            fields=[_to_anki_html(value) for value in values],
            tags=["_".join(tag.split()) for tag in card.tags],  # Anki tags have no spaces
            guid=genanki.guid_for(card.id),
        ))  # fmt: skip
    return apkg_bytes(genanki.Package(deck))


def apkg_bytes(package: "genanki.Package") -> bytes:
    """What genanki's Package.write_to_file writes (a zip of the SQLite collection and an
    empty media list), without its leak: it builds the collection in a tempfile.mkstemp()
    file that it never removes (genanki 0.13.1), one more file in /tmp for every export a
    server ever made. Here the collection is built in a folder that is removed, through
    genanki's own write_to_db, and the zip is written in memory."""
    timestamp = time.time()
    with tempfile.TemporaryDirectory(prefix="cardrag-apkg-export-") as folder:
        collection = Path(folder) / "collection.anki2"
        with closing(sqlite3.connect(collection)) as db:
            package.write_to_db(db.cursor(), timestamp, itertools.count(int(timestamp * 1000)))
            db.commit()
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as zipped:
            zipped.write(collection, "collection.anki2")
            zipped.writestr("media", "{}")
        return buffer.getvalue()


def _record(card: Card) -> dict[str, str]:
    return {
        "question": card.question,
        "short_answer": card.short_answer,
        "long_answer": card.long_answer,
        "topic": card.topic,
        "difficulty": card.difficulty,
        "tags": ",".join(card.tags),
    }


def _to_anki_html(text: str) -> str:
    """Anki shows fields as HTML: escape the text and keep its line breaks."""
    return html.escape(text, quote=False).replace("\n", "<br>")


def _stable_id(name: str) -> int:
    """A positive 31-bit id from a name: the same every export (genanki's advice)."""
    return (1 << 30) + int(hashlib.sha1(name.encode()).hexdigest()[:7], 16)

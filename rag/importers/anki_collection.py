"""The tables of an Anki collection, read and checked.

A package can come from anyone, so every value is checked where Anki would have written
it: a NULL, a BLOB or JSON of another shape is an error naming the table, column or note
type, never a crash. Field names come from the note type (`col.models` JSON in the classic
schema genanki writes, the `fields` table in schema 15 and later), deck names likewise
(`col.decks`, or the `decks` table).
"""

import json
import sqlite3
from dataclasses import dataclass

from rag.errors import CardError

FIELD_SEPARATOR = "\x1f"
NOTES_QUERY = (
    "SELECT n.id, n.mid, n.tags, n.flds, MIN(c.did) FROM notes n "
    "LEFT JOIN cards c ON c.nid = n.id GROUP BY n.id ORDER BY n.id"
)
KNOWN_TABLES = ("col", "notes", "cards", "fields", "decks")


@dataclass
class Collection:
    fields_by_type: dict[int, list[str]]  # note type id -> lower-cased field names in order
    deck_names: dict[int, str]  # deck id -> name ('::' between sub-decks), decks with cards
    notes: list[tuple[object, ...]]  # (id, note type id, tags, flds, deck id), unchecked


def read_collection(db: sqlite3.Connection, source: str) -> Collection:
    """The note types, decks and notes of an open collection, or CardError."""
    try:
        tables = stored_tables(db)
        for needed in ("notes", "cards"):
            if needed not in tables:
                raise unreadable(source, _missing(db, needed))
        return Collection(
            _field_names(db, tables, source),
            _deck_names(db, tables, source),
            db.execute(NOTES_QUERY).fetchall(),
        )
    except sqlite3.DatabaseError as exc:
        raise unreadable(source, str(exc)) from None


def stored_tables(db: sqlite3.Connection) -> set[str]:
    """The collection tables whose rows are stored data. A view, a virtual table or a
    generated column is left out (so the table counts as missing): in a file from anyone
    it could compute any amount of data from a few bytes (a recursive view,
    `randomblob(1e9)`), which no size cap on the file would bound."""
    rows = db.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'").fetchall()
    return {
        name
        for name, sql in rows
        if name in KNOWN_TABLES
        and not str(sql).lstrip().upper().startswith("CREATE VIRTUAL")
        and not _has_generated_columns(db, name)
    }


def _missing(db: sqlite3.Connection, table: str) -> str:
    found = db.execute("SELECT type FROM sqlite_master WHERE name = ?", (table,)).fetchone()
    if found is None:
        return f"it has no '{table}' table"
    return f"'{table}' is not a table of stored rows (a view, virtual table or generated column)"


def _has_generated_columns(db: sqlite3.Connection, table: str) -> bool:
    # table is one of KNOWN_TABLES; column 6 of table_xinfo is "hidden" (2, 3: generated).
    return any(row[6] for row in db.execute(f"PRAGMA table_xinfo({table})"))


def unreadable(source: str, what: str) -> CardError:
    return CardError(f"{source}: not a readable Anki collection: {what}")


def kind(value: object) -> str:
    """What a value is, in an error: 'NULL', 'a BLOB', 'a number', 'a JSON list' …"""
    if value is None:
        return "NULL"
    if isinstance(value, bytes):
        return "a BLOB"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "a JSON list"
    if isinstance(value, dict):
        return "a JSON object"
    return "text"


def _field_names(db: sqlite3.Connection, tables: set[str], source: str) -> dict[int, list[str]]:
    if "fields" in tables:
        rows = db.execute("SELECT ntid, name FROM fields ORDER BY ntid, ord").fetchall()
        names: dict[int, list[str]] = {}
        for type_id, name in rows:
            what = f"a field of note type {type_id} in the fields table"
            type_number = _number(type_id, f"{what} has a note type id that is", source)
            names.setdefault(type_number, []).append(
                _text(name, f"{what} has a name that is", source).lower()
            )
        return names
    models = _col_json(db, tables, "models", source)
    return {
        _number(key, f"a note type id in col.models is {key!r},", source):
        _model_field_names(key, model, source)
        for key, model in models.items()
    }  # fmt: skip


def _model_field_names(type_key: str, model: object, source: str) -> list[str]:
    what = f"note type {type_key} in col.models"
    fields = model.get("flds") if isinstance(model, dict) else None
    if not isinstance(fields, list) or not all(isinstance(f, dict) for f in fields):
        raise unreadable(source, f"{what} has no list of fields ('flds')")
    ordered = []
    for position, field in enumerate(fields):
        name = _text(field.get("name"), f"{what} has a field name that is", source)
        order = _number(field.get("ord", position), f"{what}: field {name!r} has an 'ord' that is",
                        source)  # fmt: skip
        ordered.append((order, name.lower()))
    return [name for _, name in sorted(ordered)]


def _deck_names(db: sqlite3.Connection, tables: set[str], source: str) -> dict[int, str]:
    """Deck id -> name, for decks that hold cards; sub-decks are joined with '::' (schema
    15+ stores them with \\x1f)."""
    used = {row[0] for row in db.execute("SELECT DISTINCT did FROM cards")}
    if "decks" in tables:
        rows = db.execute("SELECT id, name FROM decks").fetchall()
        where = "the decks table"
    else:
        decks = _col_json(db, tables, "decks", source)
        rows = [(_number(key, f"a deck id in col.decks is {key!r},", source),
                 deck.get("name") if isinstance(deck, dict) else None)
                for key, deck in decks.items()]  # fmt: skip
        where = "col.decks"
    return {
        deck_id: _text(name, f"deck {deck_id} in {where} has a name that is", source)
        .replace(FIELD_SEPARATOR, "::")
        for deck_id, name in rows if deck_id in used
    }  # fmt: skip


def _col_json(db: sqlite3.Connection, tables: set[str], column: str, source: str) -> dict:
    """A JSON object from the col table's one row (`models` or `decks`)."""
    if "col" not in tables:
        raise unreadable(source, f"it has no 'col' table (for the {column})")
    row = db.execute(f"SELECT {column} FROM col").fetchone()  # column: models or decks
    if row is None:
        raise unreadable(source, "the col table is empty")
    text = _text(row[0], f"col.{column} is", source, "JSON text")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise unreadable(source, f"col.{column} is not valid JSON: {exc.msg}") from None
    except RecursionError:
        raise unreadable(source, f"col.{column} is JSON nested too deeply") from None
    if not isinstance(value, dict):
        raise unreadable(source, f"col.{column} is {kind(value)}, not a JSON object")
    return value


def _text(value: object, what: str, source: str, expected: str = "text") -> str:
    if isinstance(value, str):
        return value
    raise unreadable(source, f"{what} {kind(value)}, not {expected}")


def _number(value: object, what: str, source: str) -> int:
    """An id or position: an integer, or text that is one (JSON object keys are text)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            pass
    raise unreadable(source, f"{what} not a number")

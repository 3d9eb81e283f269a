"""Reading decks that others wrote: one module per format, each returning a ParsedFile
(raw cards with the line, row or note they came from) or raising CardError naming it."""

from collections.abc import Callable
from pathlib import PurePath

from rag.errors import CardError
from rag.importers import anki, jsonl, markdown, table
from rag.importers.common import ParsedFile

TextParser = Callable[[str, str], ParsedFile]
TEXT_FORMATS: dict[str, TextParser] = {
    "md": markdown.parse,
    "csv": table.parse,
    "tsv": table.parse,
    "jsonl": jsonl.parse,
}
FORMATS = (*TEXT_FORMATS, "apkg")
SUFFIXES = {".md": "md", ".markdown": "md", ".csv": "csv", ".tsv": "tsv", ".tab": "tsv",
            ".jsonl": "jsonl", ".ndjson": "jsonl", ".apkg": "apkg"}  # fmt: skip


def format_of(filename: str, declared: str | None = None) -> str:
    """The declared format, or the one the file name's suffix implies."""
    if declared:
        if declared not in FORMATS:
            raise CardError(f"unknown format {declared!r}: use one of {', '.join(FORMATS)}")
        return declared
    suffix = PurePath(filename).suffix.lower()
    if suffix not in SUFFIXES:
        raise CardError(
            f"{filename}: cannot tell the format from the suffix {suffix or '(none)'!r}: "
            f"use one of {', '.join(SUFFIXES)} or say the format ({', '.join(FORMATS)})"
        )
    return SUFFIXES[suffix]


def parse_file(data: bytes, filename: str, declared: str | None = None) -> ParsedFile:
    fmt = format_of(filename, declared)
    source = PurePath(filename).name
    if fmt == "apkg":
        return anki.parse(data, source)
    return TEXT_FORMATS[fmt](decode_text(data, source), source)


def decode_text(data: bytes, source: str) -> str:
    """UTF-8 (a byte-order mark is allowed); otherwise an error naming the line."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise CardError(f"{source}: line {line}: not UTF-8 text") from None

"""Reading decks that others wrote: one module per format, each returning a ParsedFile
(raw cards with the line, row or note they came from) or raising CardError naming it."""

import codecs
from collections.abc import Callable
from pathlib import PurePath

from rag.errors import CardError
from rag.importers import anki, jsonl, markdown, table
from rag.importers.common import ParsedFile, empty_file

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
# Text with a byte-order mark is decoded by it (spreadsheets save "Unicode text" as UTF-16);
# UTF-32's marks come first, as UTF-32-LE's begins with UTF-16-LE's. The codecs named read
# and drop the mark themselves.
_BYTE_ORDER_MARKS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
                     (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))  # fmt: skip


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
    """Read a file in its format; an empty file is the same error in every format."""
    fmt = format_of(filename, declared)
    source = PurePath(filename).name
    if fmt == "apkg":
        if not data:
            raise empty_file(source)
        return anki.parse(data, source)
    text = decode_text(data, source)
    if not text.strip():
        raise empty_file(source)
    return TEXT_FORMATS[fmt](text, source)


def decode_text(data: bytes, source: str) -> str:
    """UTF-8, or UTF-16/32 when a byte-order mark says so; otherwise an error naming the
    line and saying what to do."""
    encoding = next((codec for bom, codec in _BYTE_ORDER_MARKS if data.startswith(bom)),
                    "utf-8-sig")  # fmt: skip
    if encoding == "utf-8-sig" and b"\0" in data:  # checked first: it may not decode
        _refuse_nul(source, data[: data.index(b"\0")].count(b"\n") + 1)
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        read = data[: exc.start].decode(encoding, errors="replace")
        line = read.count("\n") + 1
        name = encoding.removesuffix("-sig").upper()
        raise CardError(f"{source}: line {line}: not {name} text: save it as UTF-8") from None
    if "\0" in text:
        _refuse_nul(source, text.count("\n", 0, text.index("\0")) + 1)
    return text


def _refuse_nul(source: str, line: int) -> None:
    """No text file holds NUL: the file is binary, or UTF-16 saved without a byte-order
    mark (whose ASCII letters each come with a NUL). Refused rather than dropped, so a
    question never silently loses what the NUL stood for."""
    raise CardError(
        f"{source}: line {line}: a NUL character, so not a text file (or UTF-16 without "
        "a byte-order mark): save it as UTF-8"
    )

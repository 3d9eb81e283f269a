"""CSV and TSV files with a header row: question, answer, and optional columns (see
docs/CARD_FORMAT.md). The delimiter is the header's most frequent of tab, comma and
semicolon, so a spreadsheet's "CSV" with semicolons reads too."""

import csv
import io
from pathlib import PurePath

from rag.errors import CardError
from rag.importers.common import (
    ParsedFile,
    RawCard,
    empty_file,
    record_card,
    record_fields,
    skipped_entry,
)

DELIMITERS = ("\t", ",", ";")


def parse(text: str, source: str) -> ParsedFile:
    header_line = next((line for line in text.splitlines() if line.strip()), "")
    delimiter = max(DELIMITERS, key=header_line.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    cards: list[RawCard] = []
    skipped: list[str] = []
    try:
        header = next(reader, None)
        if header is None:
            raise empty_file(source)
        fields = record_fields(header, f"{source}: line {reader.line_num} (header)")
        row_start = reader.line_num + 1
        for row_number, row in enumerate(reader, start=2):
            where = f"{source}: row {row_number} (line {row_start})"
            row_start = reader.line_num + 1
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(fields):
                raise CardError(f"{where}: {_cells(len(row))}, the header has {len(fields)}")
            card = record_card(dict(zip(fields, row, strict=True)), where)
            if card is None:
                skipped.append(skipped_entry(where, row[fields.index("question")]))
            else:
                cards.append(card)
    except csv.Error as exc:
        raise CardError(f"{source}: line {reader.line_num}: not valid CSV: {exc}") from None
    return ParsedFile(PurePath(source).stem, cards, skipped, source)


def _cells(count: int) -> str:
    return "1 cell" if count == 1 else f"{count} cells"

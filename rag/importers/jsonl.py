"""JSON Lines: one object per line with the same keys as the CSV columns."""

import json
from pathlib import PurePath

from rag.errors import CardError
from rag.importers.common import ParsedFile, RawCard, record_card, record_fields, skipped_entry


def parse(text: str, source: str) -> ParsedFile:
    cards: list[RawCard] = []
    skipped: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{source}: line {number}"
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise CardError(f"{where}: not valid JSON: {exc.msg}") from None
        if not isinstance(item, dict):
            raise CardError(f"{where}: each line must be a JSON object")
        fields = record_fields(list(item), where)
        record = dict(zip(fields, item.values(), strict=True))
        card = record_card(record, where)
        if card is None:
            skipped.append(skipped_entry(where, str(record["question"])))
        else:
            cards.append(card)
    return ParsedFile(PurePath(source).stem, cards, skipped, source)

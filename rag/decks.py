"""The deck library: the shipped corpus plus decks imported from others' files.

An imported deck is kept as a card file of its own under `<data_dir>/decks/` (the corpus
format, so it can be read, diffed and edited like any deck), and the index is synced with
corpus/ and those files together: `cardrag ingest`, an import and a removal all hand the
indexer the same full set of cards, so none of them drops another's deck.
"""

import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any

import yaml

from rag.cards import (
    DECK_SUFFIXES,
    SLUG_PATTERN,
    Card,
    Deck,
    DeckHeader,
    all_cards,
    check_unique,
    deck_paths,
    load_corpus,
)
from rag.durable import write_atomically
from rag.errors import CardError, DeckNotFound, EmptyCorpus
from rag.importers import parse_file
from rag.importers.common import to_cards
from rag.index import CardIndexer, IngestReport
from rag.settings import Settings

IMPORTED_SUBDIR = "decks"
DECK_NAME = re.compile(SLUG_PATTERN)
DECK_NAME_MAX = 60  # leaves room in a 120-character card id for the question and a hash
CARD_FIELD_ORDER = ("id", "question", "difficulty", "topic", "tags", "short_answer", "long_answer")


@dataclass(frozen=True)
class DeckSummary:
    id: str
    title: str
    cards: int
    source: str  # "corpus" or "imported"


@dataclass(frozen=True)
class ImportResult:
    deck: str
    title: str
    cards: int
    report: IngestReport
    skipped: list[str] = field(default_factory=list)


class DeckLibrary:
    """Reads every deck, and imports or removes decks under a lock (one writer at a time
    per process, and the index's writer lock across processes, held from reading the decks
    to publishing; the deck file is written before the index is synced and put back if the
    sync fails)."""

    def __init__(self, corpus_dir: Path, imported_dir: Path):
        self.corpus_dir = corpus_dir
        self.imported_dir = imported_dir
        self._lock = threading.Lock()
        self._parsed: tuple[tuple[tuple[str, int, int], ...], list[Deck]] | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> "DeckLibrary":
        return cls(settings.corpus_dir, settings.data_dir / IMPORTED_SUBDIR)

    def decks(self) -> list[Deck]:
        """Every deck, parsed again only when the deck files have changed (another set of
        files, or a file's size or modification time in ns): GET /v1/decks, the quiz and
        exports would otherwise parse every YAML file on each request."""
        signature = self._files_signature()
        parsed = self._parsed
        if parsed is None or parsed[0] != signature:
            parsed = (signature, load_corpus(self.corpus_dir, [self.imported_dir]))
            self._parsed = parsed
        return list(parsed[1])

    def _files_signature(self) -> tuple[tuple[str, int, int], ...]:
        stats = ((path, path.stat()) for path in deck_paths(self.corpus_dir, [self.imported_dir]))
        return tuple((str(path), st.st_mtime_ns, st.st_size) for path, st in stats)

    def all_cards(self) -> list[Card]:
        """Every card of corpus/ and the imported decks: what the index must hold."""
        return all_cards(self.decks())

    def cards_to_ingest(self, allow_empty: bool = False) -> list[Card]:
        """Every card, for an ingest. A corpus folder without a deck file is refused
        (EmptyCorpus) unless `allow_empty`: the sync would remove every corpus card from the
        index, and an empty or mistyped corpus path looks just like it. Imported decks do
        not vouch for it: with them, a mistyped path would silently keep only theirs."""
        cards = self.all_cards()
        if not allow_empty and not deck_paths(self.corpus_dir):
            kept = "every card" if not cards else "every card but the imported decks'"
            raise EmptyCorpus(
                f"{self.corpus_dir}: no deck files (*.yaml, *.yml); an ingest would remove "
                f"{kept} from the index, so nothing was changed. Check the corpus path, or "
                "pass --allow-empty to sync without corpus decks on purpose"
            )
        return cards

    def ingest(
        self, indexer: CardIndexer, *, allow_empty: bool = False, show_progress: bool = False
    ) -> tuple[list[Card], IngestReport]:
        """Sync the index with every deck, read under the writer lock (a deck imported
        meanwhile is included); returns the cards and the sync's report."""
        with indexer.writing():
            cards = self.cards_to_ingest(allow_empty)
            return cards, indexer.sync(cards, show_progress, allow_empty=allow_empty)

    def summaries(self) -> list[DeckSummary]:
        return [
            DeckSummary(deck.header.id, deck.header.title, len(deck.cards),
                        "imported" if self._is_imported(deck) else "corpus")  # fmt: skip
            for deck in self.decks()
        ]

    def cards_of(self, name: str) -> list[Card]:
        return self._find(self.decks(), name).cards

    def import_file(
        self,
        indexer: CardIndexer,
        name: str,
        data: bytes,
        filename: str,
        fmt: str | None = None,
    ) -> ImportResult:
        """Parse and validate the whole file first: a bad file changes nothing."""
        check_deck_name(name)
        parsed = parse_file(data, filename, fmt)
        cards = to_cards(name, parsed)
        title = " ".join(parsed.title.split())[:300] or name
        header = DeckHeader(id=name, title=title,
                            description=f"Imported from {PurePath(filename).name}")  # fmt: skip
        with self._lock, indexer.writing():  # decks read, written and synced as one
            decks = self.decks()
            existing = next((d for d in decks if d.header.id == name), None)
            if existing is not None and not self._is_imported(existing):
                raise CardError(
                    f"deck {name!r} is a corpus deck ({existing.path}): import under another name"
                )
            path = existing.path if existing is not None else self._path(name)
            deck = Deck(header=header, path=path, cards=cards)
            others = [d for d in decks if d is not existing]
            report = self._replace(indexer, deck.path, deck, others)
        return ImportResult(name, title, len(cards), report, parsed.skipped)

    def remove(self, indexer: CardIndexer, name: str) -> tuple[int, IngestReport]:
        """Remove an imported deck and its cards from the index; returns its card count.
        A damaged deck file, this deck's or another's, does not stop it (_remove_unread):
        a deck that no longer parses is exactly the one a user wants gone."""
        with self._lock, indexer.writing():
            try:
                decks = self.decks()
            except CardError:
                return self._remove_unread(indexer, name)
            deck = self._find(decks, name)
            if not self._is_imported(deck):
                raise CardError(
                    f"deck {name!r} is part of the corpus: remove {deck.path} and run ingest"
                )
            report = self._replace(indexer, deck.path, None, [d for d in decks if d is not deck])
        return len(deck.cards), report

    def _remove_unread(self, indexer: CardIndexer, name: str) -> tuple[int, IngestReport]:
        """Remove an imported deck while some deck file cannot be read (the writer lock is
        held). The deck is found by its file name, as imports name it, since its own file
        may be the damaged one, and counted by its cards in the index. The index is then
        synced with the other decks if they all read once this file is gone; if not, with
        what it holds now less this deck's cards, copied as they are (nothing re-embedded):
        syncing with the readable files alone would drop the cards a damaged deck had when
        it was last ingested. If the sync fails, the file is put back."""
        path = self._imported_file(name)
        if path is None:
            raise DeckNotFound(
                f"no imported deck named {name!r} (a deck file cannot be read, so the decks "
                "were not listed; `cardrag decks` names it)"
            )
        held = indexer.live.snapshot()[1].all_cards()
        previous = path.read_bytes()
        path.unlink()
        try:
            try:
                remaining = all_cards(self.decks())
            except CardError:
                remaining = [card for card in held if card.deck != name]
            report = indexer.sync(remaining, allow_empty=True)
        except BaseException:
            write_atomically(path, previous)
            raise
        return sum(card.deck == name for card in held), report

    def _imported_file(self, name: str) -> Path | None:
        """The imported deck file named `name`, if there is one. Only a deck name is looked
        up: a name such as '../corpus/mlops' must not reach outside the imported decks."""
        if not DECK_NAME.match(name):
            return None
        candidates = (self.imported_dir / f"{name}{suffix}" for suffix in DECK_SUFFIXES)
        return next((path for path in candidates if path.is_file()), None)

    def _replace(
        self, indexer: CardIndexer, path: Path, deck: Deck | None, others: Sequence[Deck]
    ) -> IngestReport:
        """Write (or delete) one deck file, then sync the index with every deck; if the
        sync fails, the file is put back as it was, so files and index agree again on the
        next ingest."""
        remaining = [*others, deck] if deck is not None else list(others)
        check_unique(remaining)
        previous = path.read_bytes() if path.is_file() else None
        if deck is None:
            path.unlink()
        else:
            write_deck_file(deck)
        try:
            # Removing the last deck may empty the index: the user named what goes.
            return indexer.sync(all_cards(remaining), allow_empty=deck is None)
        except BaseException:
            if previous is None:
                path.unlink(missing_ok=True)
            else:
                write_atomically(path, previous)
            raise

    def _find(self, decks: Sequence[Deck], name: str) -> Deck:
        found = next((d for d in decks if d.header.id == name), None)
        if found is None:
            known = ", ".join(sorted(d.header.id for d in decks)) or "none"
            raise DeckNotFound(f"no deck named {name!r} (decks: {known})")
        return found

    def _path(self, name: str) -> Path:
        return self.imported_dir / f"{name}.yaml"

    def _is_imported(self, deck: Deck) -> bool:
        return self.imported_dir.resolve() in deck.path.resolve().parents


def check_deck_name(name: str) -> None:
    if not DECK_NAME.match(name) or len(name) > DECK_NAME_MAX:
        raise CardError(
            f"deck name {name!r}: use lower-case letters, digits, '-' or '_' "
            f"(at most {DECK_NAME_MAX} characters), e.g. ds-theory"
        )


def write_deck_file(deck: Deck) -> None:
    """The deck in the corpus card format, written beside and renamed over (a crash never
    leaves half a file)."""
    document = {
        "deck": deck.header.model_dump(exclude_defaults=True),
        "cards": [_card_entry(card) for card in deck.cards],
    }
    text = yaml.dump(document, Dumper=_DeckDumper, sort_keys=False, allow_unicode=True, width=100)
    write_atomically(deck.path, text.encode("utf-8"))


def _card_entry(card: Card) -> dict[str, Any]:
    data = card.model_dump(exclude={"deck"})
    data["tags"] = list(card.tags)
    return {key: data[key] for key in CARD_FIELD_ORDER if key != "tags" or data["tags"]}


class _DeckDumper(yaml.SafeDumper):
    """Multi-line answers as `|` blocks, so an imported deck file reads like a corpus one."""


def _represent_text(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_DeckDumper.add_representer(str, _represent_text)

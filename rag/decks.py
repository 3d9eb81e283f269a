"""The deck library: the shipped corpus plus decks imported from others' files.

An imported deck is kept as a card file of its own under `<data_dir>/decks/` (the corpus
format, so it can be read, diffed and edited like any deck), and the index is synced with
corpus/ and those files together: `cardrag ingest`, an import and a removal all hand the
indexer the same full set of cards, so none of them drops another's deck.

A deck file changes before the index is synced with it, so a process killed in between
would leave the two disagreeing. A marker (`<data_dir>/decks.pending`) is written before
the file changes and removed once the index holds what the files say; one left behind is
seen through by `recover` (at the server's start-up and before the CLI's deck commands).
"""

import json
import logging
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
from rag.durable import storage_errors, write_atomically
from rag.errors import CardError, CardragError, DeckNotFound, EmptyCorpus, IndexBusy
from rag.importers import parse_file
from rag.importers.common import to_cards
from rag.index import CardIndexer, IngestReport
from rag.settings import Settings

log = logging.getLogger("cardrag.decks")
IMPORTED_SUBDIR = "decks"
PENDING_SUFFIX = ".pending"  # the marker beside the imported decks' folder: decks.pending
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
class PendingChange:
    """A deck import or removal that began changing the deck files and has not (yet) seen
    the index synced with them: its process was killed, or its sync failed."""

    operation: str  # "import" or "remove"
    deck: str

    def __str__(self) -> str:
        noun = {"remove": "removal"}.get(self.operation, self.operation)
        return f"the {noun} of deck {self.deck!r}"


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
    sync fails, and a marker written before it (`pending`) outlives a killed process)."""

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
        with storage_errors(self.data_dir), indexer.writing():
            cards = self.cards_to_ingest(allow_empty)
            report = indexer.sync(cards, show_progress, allow_empty=allow_empty)
            self._settled()
            return cards, report

    @property
    def data_dir(self) -> Path:
        return self.imported_dir.parent

    @property
    def pending_path(self) -> Path:
        return self.imported_dir.with_name(self.imported_dir.name + PENDING_SUFFIX)

    def has_pending_change(self) -> bool:
        """Whether a deck change's marker is there: one stat, the usual answer no. Callers ask
        before building what seeing it through needs (a thread, the encoder)."""
        return self.pending_path.exists()

    def pending(self) -> PendingChange | None:
        """The deck change whose marker is still there, if any. Only meaningful under the
        writer lock: without it, the marker may be a running import's own."""
        try:
            raw = json.loads(self.pending_path.read_bytes())
            return PendingChange(str(raw["operation"]), str(raw["deck"]))
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError):  # unreadable: still a change to see through
            return PendingChange("change", "unknown")

    def recover(self, indexer: CardIndexer) -> IngestReport | None:
        """See through a deck change that a killed process (or a failed sync) left half
        done: sync the index with the deck files, as `cardrag ingest` would (nothing
        unchanged is embedded again). None when there was nothing to do. An import or a
        removal does the same by itself, since it syncs every deck; this is for start-up,
        so that files and index never disagree unnoticed until the next one."""
        if not self.has_pending_change():
            return None
        with self._lock, storage_errors(self.data_dir), indexer.writing():
            change = self.pending()
            if change is None:
                return None  # another process saw it through meanwhile
            log.warning("%s did not finish; syncing the index with the deck files", change)
            report = indexer.sync(self._cards_after(change, indexer), allow_empty=True)
            self._settled()
        log.warning("%s is seen through: %d cards added, %d updated, %d removed", change,
                    report.added, report.updated, report.removed)  # fmt: skip
        return report

    def recover_or_warn(self, indexer: CardIndexer) -> None:
        """`recover`, for callers that go on whatever happens (the server's start-up, the
        CLI's deck commands): what stops it is logged, not raised. Another writer holding
        the lock sees the change through itself; a damaged deck file or a full disk leaves
        files and index disagreeing until it is fixed, which the warning says."""
        try:
            self.recover(indexer)
        except IndexBusy:
            log.info("another writer holds the data directory; it sees the deck files through")
        except CardragError as exc:
            log.warning("the deck files and the index may disagree until this is fixed: %s", exc)

    def _cards_after(self, change: PendingChange, indexer: CardIndexer) -> list[Card]:
        """What the index must hold: every deck file's cards. If a deck file does not read
        and the change was a removal, what the index holds less the removed deck's, as
        _remove_unread does; an import waits for the repair (CardError)."""
        try:
            return self.cards_to_ingest()
        except CardError:
            if change.operation != "remove":
                raise
            return _without_deck(_held_cards(indexer), change.deck)

    def _begin(self, change: PendingChange) -> None:
        """Mark a change before the first deck file is touched: written, fsynced and renamed
        (the directory fsynced too), so it is on disk before the change it announces."""
        earlier = self.pending()
        if earlier is not None:
            log.warning("%s did not finish; this sync sees it through", earlier)
        record = json.dumps({"operation": change.operation, "deck": change.deck})
        write_atomically(self.pending_path, record.encode(), sync_directory=True)

    def _settled(self) -> None:
        """The index holds what the deck files say: nothing is left to see through."""
        self.pending_path.unlink(missing_ok=True)

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
        # Decks read, written and synced as one.
        with self._lock, storage_errors(self.data_dir), indexer.writing():
            decks = self.decks()
            existing = next((d for d in decks if d.header.id == name), None)
            if existing is not None and not self._is_imported(existing):
                raise CardError(
                    f"deck {name!r} is a corpus deck ({existing.path}): import under another name"
                )
            path = existing.path if existing is not None else self._path(name)
            deck = Deck(header=header, path=path, cards=cards)
            others = [d for d in decks if d is not existing]
            report = self._replace(indexer, name, deck.path, deck, others)
        return ImportResult(name, title, len(cards), report, parsed.skipped)

    def remove(self, indexer: CardIndexer, name: str) -> tuple[int, IngestReport]:
        """Remove an imported deck and its cards from the index; returns its card count.
        A damaged deck file, this deck's or another's, does not stop it (_remove_unread):
        a deck that no longer parses is exactly the one a user wants gone."""
        with self._lock, storage_errors(self.data_dir), indexer.writing():
            try:
                decks = self.decks()
            except CardError:
                return self._remove_unread(indexer, name)
            deck = self._find(decks, name)
            if not self._is_imported(deck):
                raise CardError(
                    f"deck {name!r} is part of the corpus: remove {deck.path} and run ingest"
                )
            others = [d for d in decks if d is not deck]
            report = self._replace(indexer, name, deck.path, None, others)
        return len(deck.cards), report

    def _remove_unread(self, indexer: CardIndexer, name: str) -> tuple[int, IngestReport]:
        """Remove an imported deck while some deck file cannot be read (the writer lock is
        held). The deck is found by its file name, as imports name it, since its own file
        may be the damaged one, and counted by its cards in the index. The index is then
        synced with the other decks if they all read once this file is gone; if not, with
        what it holds now less this deck's cards, copied as they are (nothing re-embedded):
        syncing with the readable files alone would drop the cards a damaged deck had when
        it was last ingested. If the sync fails, the file is put back (and the marker stays)."""
        path = self._imported_file(name)
        if path is None:
            raise DeckNotFound(
                f"no imported deck named {name!r} (a deck file cannot be read, so the decks "
                "were not listed; `cardrag decks` names it)"
            )
        held = _held_cards(indexer)
        previous = path.read_bytes()
        self._begin(PendingChange("remove", name))
        path.unlink()
        try:
            try:
                remaining = all_cards(self.decks())
            except CardError:
                remaining = _without_deck(held, name)
            report = indexer.sync(remaining, allow_empty=True)
        except BaseException:
            _put_back(path, previous)
            raise
        self._settled()
        return sum(card.deck == name for card in held), report

    def _imported_file(self, name: str) -> Path | None:
        """The imported deck file named `name`, if there is one. Only a deck name is looked
        up: a name such as '../corpus/mlops' must not reach outside the imported decks."""
        if not DECK_NAME.match(name):
            return None
        candidates = (self.imported_dir / f"{name}{suffix}" for suffix in DECK_SUFFIXES)
        return next((path for path in candidates if path.is_file()), None)

    def _replace(
        self,
        indexer: CardIndexer,
        name: str,
        path: Path,
        deck: Deck | None,
        others: Sequence[Deck],
    ) -> IngestReport:
        """Write (or delete) one deck file, then sync the index with every deck. If the
        sync fails, the file is put back as it was; the marker written first stays until
        the index is known to hold what the files say (a kill skips the put-back)."""
        remaining = [*others, deck] if deck is not None else list(others)
        check_unique(remaining)
        previous = path.read_bytes() if path.is_file() else None
        self._begin(PendingChange("remove" if deck is None else "import", name))
        if deck is None:
            path.unlink()
        else:
            write_deck_file(deck)
        try:
            # Removing the last deck may empty the index: the user named what goes.
            report = indexer.sync(all_cards(remaining), allow_empty=deck is None)
        except BaseException:
            _put_back(path, previous)
            raise
        self._settled()
        return report

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


def _put_back(path: Path, previous: bytes | None) -> None:
    """A deck file as it was before a change whose sync failed (None: there was none)."""
    if previous is None:
        path.unlink(missing_ok=True)
    else:
        write_atomically(path, previous)


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


def _held_cards(indexer: CardIndexer) -> list[Card]:
    """The cards the live index holds: what a removal keeps when a deck file does not read
    (syncing with the readable files alone would drop a damaged deck's indexed cards)."""
    return indexer.live.snapshot()[1].all_cards()


def _without_deck(cards: Sequence[Card], deck: str) -> list[Card]:
    return [card for card in cards if card.deck != deck]

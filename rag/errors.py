"""Domain errors. The API maps them to HTTP in one handler; the CLI to one line and exit 1."""

from collections.abc import Sequence
from pathlib import Path


class CardragError(Exception):
    """Base class: a problem a user can act on, with a message that says what to do."""


class CardError(CardragError):
    """A deck file or a card in it is malformed. The message names file, card and field;
    `files` lists the deck files at fault, when they are known, for callers that may show
    a file's name but not the server's paths in the message (the API)."""

    def __init__(self, message: str, files: Sequence[Path] = ()):
        super().__init__(message)
        self.files = tuple(files)


class CardNotFound(CardragError):
    """No card with that id is in the index."""


class DeckNotFound(CardragError):
    """No deck with that name."""


class ModelNotAvailable(CardragError):
    """A model file or package is missing: run `make install` (or `cardrag models fetch`)."""


class LLMUnavailable(CardragError):
    """The LLM backend failed, timed out or returned nothing usable."""


class IndexBusy(CardragError):
    """Another process is writing to the same data directory (one writer at a time)."""


class IndexEmpty(CardragError):
    """The index holds no cards (never ingested, or emptied on purpose): a search or an
    answer would only say "nothing found" and hide the reason."""


class EmptyCorpus(CardragError):
    """A sync was given no cards: it would remove every card from the index. Refused unless
    asked for, because an empty or mistyped corpus folder looks exactly like that."""


class IndexUnavailable(CardragError):
    """The index cannot be opened (unreadable or damaged on disk, or the Chroma server
    unreachable); nothing was changed."""


class StorageError(CardragError):
    """The data directory could not be written (no space left, permission denied, a
    read-only file system): the server's fault, not the caller's. What was already ingested
    is as it was; the message names the problem and the directory."""

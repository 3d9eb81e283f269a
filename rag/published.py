"""Which Chroma collection is live: the pointer file `<data_dir>/active.json`.

Every ingest that changes anything builds a new collection (`cards-g000007`) beside the live
one and then replaces this small file by write, fsync and rename, which POSIX makes atomic:
a reader sees the old pointer or the new one, never a torn one, and a writer killed at any
point leaves the old pointer (and the old, untouched collection) in place. Readers read the
file on every request, so a server follows ingests made by another process.

A data directory from before this scheme has no pointer and one collection named exactly
`cards` with `docstore.json` beside it: that is read as generation 0, and the next ingest
that changes anything moves it to the scheme.
"""

import json
import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rag.durable import write_atomically
from rag.errors import IndexUnavailable

POINTER_FILE = "active.json"
DOCSTORE_DIR = "docstores"
LEGACY_DOCSTORE = "docstore.json"


class Published(BaseModel):
    """The live collection, the one it replaced (kept for requests still reading it), how
    many cards the live one holds (checked before it was published) and which encoder
    embedded them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    collection: str = Field(min_length=3)
    generation: int = Field(ge=0)
    cards: int = Field(ge=0)
    previous: str | None = None
    # The encoder whose vectors the collection holds (rag.embedding.embedder_name). None in
    # pointers written before it was recorded: those are taken to match whatever is
    # configured, as they always were.
    encoder: str | None = None

    def docstore_path(self, data_dir: Path) -> Path:
        return docstore_path(data_dir, self.collection, self.generation)


def generation_name(base: str, generation: int) -> str:
    return f"{base}-g{generation:06d}"


def is_generation_of(base: str, name: str) -> bool:
    """A collection this scheme made (or the legacy one): the only ones ingest may drop."""
    return name == base or re.fullmatch(rf"{re.escape(base)}-g\d{{6}}", name) is not None


def docstore_path(data_dir: Path, collection: str, generation: int) -> Path:
    """Each collection has its own docstore (content hashes), written before it is published."""
    if generation == 0:
        return data_dir / LEGACY_DOCSTORE
    return data_dir / DOCSTORE_DIR / f"{collection}.json"


def read_published(data_dir: Path) -> Published | None:
    """The pointer, or None when there is none (nothing ingested, or a legacy directory)."""
    path = data_dir / POINTER_FILE
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise IndexUnavailable(f"{path}: cannot read the index pointer ({exc.strerror})") from None
    try:
        return Published.model_validate_json(text)
    except ValidationError as exc:
        problem = exc.errors()[0]["msg"]
        raise IndexUnavailable(
            f"{path}: the index pointer is damaged ({problem}); nothing was changed. Restore "
            "it, or move the data directory away and run `cardrag ingest` to rebuild"
        ) from None


def write_published(data_dir: Path, published: Published) -> None:
    """Replace the pointer atomically and durably (rag.durable): the directory is fsynced
    too, so the rename, the moment of publication, survives a power cut."""
    content = json.dumps(published.model_dump(), indent=2) + "\n"
    write_atomically(data_dir / POINTER_FILE, content.encode(), sync_directory=True)

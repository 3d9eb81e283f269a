"""Files replaced whole or not at all: the index pointer, the ingestion docstores and the
imported decks. Each is written beside its target as `<name>.partial`, fsynced and renamed
over it (atomic on POSIX), so a reader or a run killed at any point sees the old file or the
new one, never a torn one. One module, so the three writers cannot drift apart."""

import os
from pathlib import Path

PARTIAL_SUFFIX = ".partial"


def partial_of(path: Path) -> Path:
    """Where `path` is written before it is renamed into place."""
    return path.with_name(path.name + PARTIAL_SUFFIX)


def write_atomically(path: Path, content: bytes, *, sync_directory: bool = False) -> None:
    """Replace `path` with `content`. With `sync_directory`, the rename itself is made
    durable too (for the pointer, whose rename is the moment of publication)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = partial_of(path)
    try:
        with open(partial, "wb") as out:
            out.write(content)
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    if sync_directory:
        fsync_directory(path.parent)


def move_into_place(partial: Path, path: Path) -> None:
    """Rename a file that a library wrote to `partial` (e.g. a LlamaIndex docstore's
    persist) over `path`, once its bytes are on disk."""
    with open(partial, "rb+") as written:
        os.fsync(written.fileno())
    os.replace(partial, path)


def fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

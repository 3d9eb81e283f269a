"""Files replaced whole or not at all: the index pointer, the ingestion docstores and the
imported decks. Each is written beside its target as `<name>.partial`, fsynced and renamed
over it (atomic on POSIX), so a reader or a run killed at any point sees the old file or the
new one, never a torn one. One module, so the three writers cannot drift apart."""

import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rag.errors import StorageError

PARTIAL_SUFFIX = ".partial"
# What a failed write means to the person who has to fix it, and what they can do about it.
STORAGE_PROBLEMS = {
    errno.ENOSPC: ("no space left on the device", "free some space"),
    errno.EDQUOT: ("disk quota exceeded", "free some space"),
    errno.EACCES: ("permission denied", "make it writable for this user"),
    errno.EPERM: ("permission denied", "make it writable for this user"),
    errno.EROFS: ("read-only file system", "make it writable for this user"),
}


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
    except BaseException as exc:
        partial.unlink(missing_ok=True)
        if isinstance(exc, OSError) and not exc.filename:  # a failed write() names no file
            exc.filename = str(partial)
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


@contextmanager
def storage_errors(directory: Path) -> Iterator[None]:
    """Turn a failed read or write of the data directory (a full disk, a folder made
    read-only) into a StorageError: one line naming the problem and the folder for the
    CLI, a 503 for the API, instead of a traceback. Callers put files back before it
    reaches here, so the message can say that nothing was lost. `directory` is named when
    the error names no file (a failed write() does not)."""
    try:
        yield
    except OSError as exc:
        raise storage_failure(exc, directory) from exc


def storage_failure(exc: OSError, directory: Path) -> StorageError:
    problem, remedy = STORAGE_PROBLEMS.get(exc.errno or 0, (exc.strerror or str(exc), "fix it"))
    where = Path(exc.filename).parent if exc.filename else directory
    return StorageError(
        f"{where}: {problem}; what was ingested before is unchanged: {remedy} and try again"
    )

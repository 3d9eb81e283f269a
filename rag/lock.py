"""One writer per data directory: an OS lock on `<data_dir>/ingest.lock`.

filelock's native (flock) lock, not a marker file: the kernel releases it when the holder
dies, so an ingest killed with SIGKILL never leaves a stale lock behind. The options below
turn off the library's conveniences that would weaken that: no fallback to a soft (marker
file) lock, and the lock file is kept on release (unlinking it lets a third process lock a
fresh inode while a second still holds the old one).
"""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from rag.errors import IndexBusy

LOCK_FILE = "ingest.lock"


@contextmanager
def writer_lock(data_dir: Path) -> Iterator[None]:
    """Hold the data directory's writer lock, or raise IndexBusy at once (never wait)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / LOCK_FILE
    lock = FileLock(
        path,
        timeout=0,
        thread_local=False,
        fallback_to_soft=False,
        preserve_lock_file=True,
        on_acquired=_record_holder,
    )
    try:
        lock.acquire()
    except Timeout:
        raise IndexBusy(
            f"{data_dir}: another ingest is writing to this data directory "
            f"({_holder(path)}holds {path}); wait for it to finish"
        ) from None
    try:
        yield
    finally:
        lock.release()


def _record_holder(fd: int) -> None:
    """Write our pid into the lock file so a second writer's message can name us."""
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)


def _holder(path: Path) -> str:
    try:
        pid = path.read_text().strip()
    except OSError:
        return ""
    return f"process {pid} " if pid.isdigit() else ""

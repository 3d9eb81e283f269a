"""Getting the SQLite collection out of an Anki package (.apkg, a zip) without trusting it.

The collection is streamed to a temporary file and opened read-only from there, so the
server never holds it in memory (a collection read whole and handed to
`sqlite3.Connection.deserialize` was two full copies: 1 GB for a 510 KB zip of zeros).
Its size is capped while it is read, since a zip's size header can lie.
"""

import io
import lzma
import sqlite3
import zipfile
import zlib
from pathlib import Path
from typing import IO

from rag.errors import CardError

# 100 MB: five times the default upload limit (decks.max_upload_mb = 20), which SQLite text
# compressed in a zip (3-5x) does not exceed, and several times the collection of the
# largest shared decks (tens of thousands of notes). Past it, a package is a zip bomb or
# not a deck of study cards; the cap bounds the temporary file and the time spent reading.
MAX_COLLECTION_BYTES = 100 * 1024 * 1024
CHUNK_BYTES = 1024 * 1024
COLLECTION_NAMES = ("collection.anki21", "collection.anki2")  # the newer first
# What reading a damaged member raises: CRC or header mismatches, broken deflate, bzip2
# or lzma streams, a truncated stream, an unsupported method, encryption.
_UNREADABLE = (zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError, OSError,
               NotImplementedError, RuntimeError)  # fmt: skip


def extract_collection(data: bytes, source: str, path: Path) -> None:
    """Write the package's collection to `path`, or raise CardError saying what is wrong."""
    package = _open_package(data, source)
    with package:
        name = _collection_name(package, source)
        if package.getinfo(name).file_size > MAX_COLLECTION_BYTES:
            raise _too_large(source)
        with _open_member(package, name, source) as member, path.open("wb") as out:
            copy_at_most(member, out, MAX_COLLECTION_BYTES, source)


def open_read_only(path: Path) -> sqlite3.Connection:
    """The collection, read-only. `immutable=1`: the file is ours and does not change, so
    SQLite takes no lock and reads no journal or WAL beside it (for a collection saved in
    WAL mode it would otherwise create -wal and -shm files). The pragmas are SQLite's
    advice for database files from anyone."""
    db = sqlite3.connect(f"{path.as_uri()}?mode=ro&immutable=1", uri=True)
    db.execute("PRAGMA trusted_schema = OFF")
    db.execute("PRAGMA cell_size_check = ON")
    return db


def copy_at_most(member: IO[bytes], out: IO[bytes], limit: int, source: str) -> None:
    """Copy in chunks, and stop as soon as more than `limit` bytes came out."""
    copied = 0
    while chunk := _read_chunk(member, source):
        copied += len(chunk)
        if copied > limit:
            raise _too_large(source)
        out.write(chunk)


def _open_package(data: bytes, source: str) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, EOFError, OSError, ValueError):
        raise CardError(f"{source}: not an Anki package (.apkg files are zip archives)") from None


def _collection_name(package: zipfile.ZipFile, source: str) -> str:
    names = set(package.namelist())
    if "collection.anki21b" in names:
        raise CardError(
            f"{source}: this package uses the compressed format of Anki 2.1.50+; export it "
            "again with 'Support older Anki versions' ticked"
        )
    name = next((n for n in COLLECTION_NAMES if n in names), None)
    if name is None:
        raise CardError(f"{source}: no Anki collection inside the package")
    return name


def _open_member(package: zipfile.ZipFile, name: str, source: str) -> IO[bytes]:
    try:
        return package.open(name)
    except _UNREADABLE as exc:
        raise _damaged(source, exc) from None


def _read_chunk(member: IO[bytes], source: str) -> bytes:
    try:
        return member.read(CHUNK_BYTES)
    except _UNREADABLE as exc:
        raise _damaged(source, exc) from None


def _damaged(source: str, exc: Exception) -> CardError:
    return CardError(f"{source}: the package is damaged and cannot be unpacked: {exc}")


def _too_large(source: str) -> CardError:
    limit_mb = MAX_COLLECTION_BYTES // (1024 * 1024)
    return CardError(f"{source}: the Anki collection inside is larger than {limit_mb} MB")

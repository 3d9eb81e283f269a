"""The Chroma side of the index: the client, one published collection, and the live index.

Vectors are always computed by our encoder and passed in: collections are created with no
embedding function, so Chroma never downloads its default ONNX model.

Readers never write to a collection and writers never change one after it is published
(rag.index builds a new one per change). That is what makes a server and `cardrag ingest`
in two processes safe: Chroma caches a collection's HNSW index per process, so a reader
would not see vectors another process added to a collection it has already loaded (Chroma
issue #3792, reproduced here with 1.5.9); an immutable collection has nothing to miss.
"""

import sqlite3
import threading
from collections.abc import Callable, Sequence
from contextlib import closing
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import chromadb
from chromadb.config import Settings as ChromaClientSettings
from chromadb.errors import NotFoundError
from llama_index.core.schema import BaseNode
from llama_index.core.vector_stores import SimpleVectorStore
from llama_index.vector_stores.chroma import ChromaVectorStore
from llama_index.vector_stores.chroma.base import _to_chroma_filter  # private, see chroma_where
from pydantic import PrivateAttr

from rag.cards import Card
from rag.errors import CardNotFound, CardragError, IndexEmpty, IndexUnavailable
from rag.hits import CardFilters
from rag.published import POINTER_FILE, Published, read_published

CHROMA_SUBDIR = "chroma"
CHROMA_DATABASE = "chroma.sqlite3"
T = TypeVar("T")


def chroma_client(data_dir: Path, url: str | None = None) -> Any:
    """The embedded database under data_dir, or a Chroma server when `url` is set (several
    API processes then share one index). The only place that picks between the two; a
    damaged, unreadable or unreachable index is one clear error."""
    settings = ChromaClientSettings(anonymized_telemetry=False, allow_reset=False)
    if url:
        parts = urlsplit(url)
        default_port = 443 if parts.scheme == "https" else 80
        try:
            return chromadb.HttpClient(
                host=parts.hostname or "localhost",
                port=parts.port or default_port,
                ssl=parts.scheme == "https",
                settings=settings,
            )
        except ValueError as exc:  # chromadb's "Could not connect to a Chroma server"
            raise IndexUnavailable(f"Chroma server at {url} cannot be reached: {exc}") from exc
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / CHROMA_SUBDIR
    check_database(path, read_published(data_dir))
    try:
        return chromadb.PersistentClient(path=str(path), settings=settings)
    except Exception as exc:  # Chroma's own errors, OSError, SQLite's: all mean "cannot open"
        raise unavailable(path, exc) from None


def check_database(chroma_dir: Path, published: Published | None = None) -> None:
    """SQLite's own quick integrity check of Chroma's database, before Chroma opens it.

    Chroma writes to its database as it opens it, and it does so to a damaged one as well
    (measured with 1.5.9: garbage in the middle of chroma.sqlite3 was opened and written
    to before the first read failed). This check only reads (a regular connection, so a
    journal left by a killed writer is rolled back exactly as Chroma would), and a damaged
    or unreadable index is refused before anything touches it. So is a missing database
    that the pointer (`published`) says holds the live collection: Chroma would create an
    empty one.
    """
    database = chroma_dir / CHROMA_DATABASE
    try:
        if chroma_dir.exists() and not chroma_dir.is_dir():
            raise unavailable(chroma_dir, "not a directory")
        if not database.exists():
            if published is not None:
                raise missing_collection(chroma_dir.parent, published)
            return  # a new index
        with closing(sqlite3.connect(database, timeout=30)) as connection:
            verdict = connection.execute("PRAGMA quick_check").fetchone()[0]
    except (OSError, sqlite3.Error) as exc:
        raise unavailable(chroma_dir, f"{database.name}: {exc}") from None
    if verdict != "ok":
        raise unavailable(chroma_dir, f"{database.name}: {verdict}")


# SQLite's words when it may not write (code 8, SQLITE_READONLY) or may not open or create
# a file (code 14, SQLITE_CANTOPEN: a folder it cannot write its journal into), and the
# OS's: a permission problem, not damage, so restoring or rebuilding is the wrong advice.
NOT_WRITABLE_SIGNS = ("readonly database", "read-only", "unable to open database file",
                      "permission denied", "operation not permitted")  # fmt: skip


def unavailable(chroma_dir: Path, problem: BaseException | str) -> IndexUnavailable:
    reason = (str(problem).strip().splitlines() or [type(problem).__name__])[0]
    if any(sign in reason.lower() for sign in NOT_WRITABLE_SIGNS):
        advice = (
            "it is not damaged, but this user may not write to it: make the folder and its "
            "files writable (owner, mode, `chattr -i`, a read-only mount); Chroma writes to "
            "its database even to read it"
        )
    else:
        advice = "Restore it from a backup, or move it away and run `cardrag ingest` to rebuild"
    return IndexUnavailable(
        f"{chroma_dir}: cannot open the Chroma index ({reason}); nothing was changed. {advice}"
    )


def missing_collection(data_dir: Path, published: Published) -> IndexUnavailable:
    return IndexUnavailable(
        f"{data_dir / POINTER_FILE} names collection {published.collection!r}, which "
        f"{data_dir / CHROMA_SUBDIR} does not hold: the index is damaged; nothing was changed. "
        "Move the data directory away and run `cardrag ingest` to rebuild"
    )


def check_ingested(data_dir: Path, url: str | None = None) -> None:
    """Refuse to read an embedded index nothing was ingested into (no pointer, no
    database) before a client opens it: opening would create an empty database there. A
    Chroma server, or a database without a pointer (a legacy index), is counted once
    open instead (LiveIndex.require_cards)."""
    database = data_dir / CHROMA_SUBDIR / CHROMA_DATABASE
    if url is None and read_published(data_dir) is None and not database.exists():
        raise IndexEmpty(f"nothing has been ingested into {data_dir} yet: run `cardrag ingest`")


def chroma_where(filters: CardFilters | None) -> dict[str, Any] | None:
    """Chroma's where-filter for these card filters, translated by the (private) converter
    LlamaIndex's Chroma store applies itself: reused rather than restated, so the ids-only
    query (CardStore.nearest) filters exactly as the LlamaIndex path does (a test compares
    the two)."""
    metadata = filters.to_metadata_filters() if filters else None
    return _to_chroma_filter(metadata) if metadata else None


def create_collection(client: Any, name: str) -> Any:
    return client.create_collection(
        name=name, embedding_function=None, metadata={"hnsw:space": "cosine"}
    )


# Chroma's embedded client accepts at most 5,461 records per call
# (client.get_max_batch_size()); a little under it serves the server mode as well.
MAX_CHROMA_BATCH = 5000
# Records per page when a whole collection's metadata is read (CardStore.all_cards).
READ_PAGE = MAX_CHROMA_BATCH


class BatchedChromaVectorStore(ChromaVectorStore):
    """LlamaIndex's Chroma store sends up to 41,665 records in one call, but Chroma takes at
    most `client.get_max_batch_size()` (5,461 embedded): an ingest of 10k new cards failed.
    This one adds in batches Chroma accepts."""

    _max_batch: int = PrivateAttr(default=5461)

    @classmethod
    def of(cls, collection: Any, max_batch: int) -> "BatchedChromaVectorStore":
        store = cls(chroma_collection=collection)
        store._max_batch = max_batch
        return store

    def add(self, nodes: list[BaseNode], **add_kwargs: Any) -> list[str]:
        ids: list[str] = []
        for start in range(0, len(nodes), self._max_batch):
            ids += super().add(nodes[start : start + self._max_batch], **add_kwargs)
        return ids


class CardStore:
    """One collection of card vectors whose metadata carries the whole card."""

    def __init__(self, collection: Any, max_batch: int | None = None):
        self.collection = collection
        self.name: str = collection.name
        self.vector_store = BatchedChromaVectorStore.of(collection, max_batch or MAX_CHROMA_BATCH)
        self._cards: tuple[Card, ...] | None = None

    def count(self) -> int:
        return int(self.collection.count())

    def nearest(
        self, embedding: Sequence[float], k: int, filters: CardFilters | None = None
    ) -> list[tuple[str, float]]:
        """(card id, cosine) of the k nearest cards, nothing else read.

        The hybrid retriever already holds every card in memory (its BM25 index), so it asks
        Chroma for ids and distances only. LlamaIndex's Chroma store always fetches each
        candidate's document and metadata and parses them into nodes: profiled at 10k cards
        that was ~4 of the ~7 ms a query spent in Chroma (docs/BENCHMARKS.md)."""
        found = self.collection.query(
            query_embeddings=[list(embedding)],
            n_results=k,
            where=chroma_where(filters),
            include=["distances"],
        )
        ids, distances = found["ids"][0], found["distances"][0]
        # A cosine-space collection reports distance = 1 - cosine.
        return [(card_id, 1.0 - distance) for card_id, distance in zip(ids, distances, strict=True)]

    def get_card(self, card_id: str) -> Card | None:
        found = self.collection.get(ids=[card_id], include=["metadatas"])
        metadatas = found.get("metadatas") or []
        return Card.from_metadata(metadatas[0]) if metadatas else None

    def cards(self, card_ids: Sequence[str]) -> list[Card]:
        """These cards, in the order asked, in one read; CardNotFound names the first that
        the collection does not hold."""
        if not card_ids:
            return []
        found = self.collection.get(ids=list(card_ids), include=["metadatas"])
        by_id = dict(zip(found["ids"], found["metadatas"], strict=True))
        missing = next((card_id for card_id in card_ids if card_id not in by_id), None)
        if missing is not None:
            raise CardNotFound(f"no card with id {missing!r}")
        return [Card.from_metadata(by_id[card_id]) for card_id in card_ids]

    def card_ids(self) -> list[str]:
        return sorted(self.collection.get(include=[])["ids"])

    def vector_of(self, card_id: str) -> list[float] | None:
        """The stored vector of one card; None when the collection does not hold it."""
        found = self.collection.get(ids=[card_id], include=["embeddings"])
        return list(found["embeddings"][0]) if found["ids"] else None

    def vectors(self, card_ids: Sequence[str]) -> list[list[float]]:
        """Stored vectors of these cards, in the order asked (Chroma returns its own)."""
        found = self.collection.get(ids=list(card_ids), include=["embeddings"])
        by_id = dict(zip(found["ids"], found["embeddings"], strict=True))
        return [list(by_id[card_id]) for card_id in card_ids]

    def all_cards(self) -> list[Card]:
        """Every card, read from Chroma once: a published collection never changes (an ingest
        publishes a new one, and LiveIndex opens a new CardStore for it), so browsing,
        facets, quiz picks and the BM25 build share one read per collection."""
        if self._cards is None:
            self._cards = tuple(Card.from_metadata(m) for m in self._all_metadatas())
        return list(self._cards)

    def _all_metadatas(self) -> list[dict]:
        """Every record's metadata, read in pages. Chroma reads metadata in one SQLite
        statement with a variable per record, and SQLite allows 32,766: reading all of it at
        once failed at 100k cards ("too many SQL variables", bench.scale). Pages follow
        Chroma's record order, which a published collection never changes (so its count
        does not either: no trailing empty page when the count is a multiple of a page)."""
        metadatas: list[dict] = []
        for offset in range(0, self.collection.count(), READ_PAGE):
            found = self.collection.get(include=["metadatas"], limit=READ_PAGE, offset=offset)
            metadatas.extend(found.get("metadatas") or [])
        return metadatas


class EmptyStore(CardStore):
    """What readers see before the first ingest: readers never create a collection."""

    def __init__(self) -> None:
        self.collection = None
        self.name = ""
        # LlamaIndex's in-memory store, empty: every query finds nothing, filtered or not.
        self.vector_store = SimpleVectorStore()  # type: ignore[assignment]

    def count(self) -> int:
        return 0

    def nearest(
        self, embedding: Sequence[float], k: int, filters: CardFilters | None = None
    ) -> list[tuple[str, float]]:
        return []

    def get_card(self, card_id: str) -> Card | None:
        return None

    def cards(self, card_ids: Sequence[str]) -> list[Card]:
        if card_ids:
            raise CardNotFound(f"no card with id {card_ids[0]!r}")
        return []

    def card_ids(self) -> list[str]:
        return []

    def vector_of(self, card_id: str) -> list[float] | None:
        return None

    def vectors(self, card_ids: Sequence[str]) -> list[list[float]]:
        if card_ids:
            raise KeyError(card_ids[0])
        return []

    def all_cards(self) -> list[Card]:
        return []


class LiveIndex:
    """The published collection, as readers (server, CLI searches) see it.

    The pointer file is read on every call (a small file: microseconds next to embedding
    a query), so a server follows ingests made by another process. A search that makes
    several calls pins one CardStore through `read`, so all its parts see one card set.
    """

    def __init__(self, client: Any, data_dir: Path, base: str, encoder: str | None = None):
        self.client = client
        self.data_dir = data_dir
        self.chroma_dir = data_dir / CHROMA_SUBDIR
        self.base = base
        self.encoder = encoder  # the configured one: what queries are embedded with
        self._stores: dict[str, CardStore] = {}
        self._opening = threading.RLock()

    def check(self) -> None:
        """Open and count the live collection, so that a damaged index fails at start-up
        with a clear message instead of on the first request. An index built by another
        encoder passes: `cardrag ingest` starts through here to re-embed it."""
        try:
            self.snapshot()[1].count()
        except CardragError:
            raise
        except Exception as exc:  # Chroma's errors for a damaged HNSW index or database
            raise unavailable(self.chroma_dir, exc) from None

    def require_cards(self) -> None:
        """IndexEmpty when the live collection holds no cards, for readers that would
        otherwise report "nothing found" (the CLI's search and answers); the API serves
        an empty index as it is and /healthz reports its size."""
        if self.count() == 0:
            raise IndexEmpty(f"the index in {self.data_dir} holds no cards: run `cardrag ingest`")

    def current(self) -> CardStore:
        """The live collection, for reading: its vectors must come from the configured
        encoder, or every cosine against a query would be meaningless (rankings, the
        "not covered" gate, grounding), silently."""
        published, store = self.snapshot()
        if published is not None and self.embedded_by_another_encoder(published):
            raise IndexUnavailable(
                f"{self.data_dir}: the cards were embedded by the encoder {published.encoder!r} "
                f"and this process embeds queries with {self.encoder!r}; run `cardrag "
                "ingest` with this configuration to embed them again"
            )
        return store

    def embedded_by_another_encoder(self, published: Published | None) -> bool:
        """Whether the collection's vectors come from an encoder other than the configured
        one (unknown on either side, as in pointers from before it was recorded: no)."""
        recorded = published.encoder if published else None
        return bool(recorded and self.encoder and recorded != self.encoder)

    def snapshot(self) -> tuple[Published | None, CardStore]:
        """The pointer and the store it names (None and the legacy or empty store when there
        is no pointer yet)."""
        published = read_published(self.data_dir)
        name = published.collection if published else self.base
        store = self._stores.get(name)
        if store is not None:
            return published, store
        with self._opening:
            try:
                collection = self.client.get_collection(name)
            except NotFoundError:
                if published is None:
                    return None, EmptyStore()  # nothing ingested yet
                if read_published(self.data_dir) != published:
                    return self.snapshot()  # an ingest published (twice) while we looked
                raise self._missing(published) from None
            store = self._stores[name] = CardStore(collection)
            keep = {name, published.previous if published else None}
            self._stores = {n: s for n, s in self._stores.items() if n in keep}
            return published, store

    def read(self, use: Callable[[CardStore], T]) -> T:
        """Run `use` on the live collection; if an ingest dropped that collection meanwhile
        (it keeps the one it replaced until the next publish), once more on the new one."""
        store = self.current()
        try:
            return use(store)
        except NotFoundError:
            fresh = self.current()
            if fresh.name == store.name:
                raise
            return use(fresh)

    def count(self) -> int:
        return self.read(lambda store: store.count())

    def get_card(self, card_id: str) -> Card | None:
        return self.read(lambda store: store.get_card(card_id))

    def cards(self, card_ids: Sequence[str]) -> list[Card]:
        return self.read(lambda store: store.cards(card_ids))

    def require_card(self, card_id: str) -> Card:
        """The card, or CardNotFound (a 404 in the API)."""
        return self.cards([card_id])[0]

    def card_ids(self) -> list[str]:
        return self.read(lambda store: store.card_ids())

    def vectors(self, card_ids: Sequence[str]) -> list[list[float]]:
        return self.read(lambda store: store.vectors(card_ids))

    def all_cards(self) -> list[Card]:
        return self.read(lambda store: store.all_cards())

    def _missing(self, published: Published) -> IndexUnavailable:
        return missing_collection(self.data_dir, published)

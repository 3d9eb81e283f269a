"""Ingestion: cards -> LlamaIndex nodes -> IngestionPipeline (docstore + Chroma), published
atomically.

The pipeline's docstore keeps one content hash per card id, so only new or changed cards
are embedded. We count added / updated / removed / unchanged ourselves, before the run,
from the same hashes, because the pipeline does not report them.

Crash safety: the live collection is never written to. A sync that changes anything builds
a new collection beside it (`cards-g000008`): the vectors of unchanged cards are copied from
the live collection (nothing unchanged is embedded again), the pipeline embeds the new and
changed cards into it, the result is checked against the card set, its docstore is
written, and only then does the pointer (rag.published) switch to it, by an atomic rename.
The pointer also names the encoder that embedded the collection: a sync under another
encoder (another model folder, or the hashing fake) embeds every card again instead of
copying vectors that queries could no longer be compared with, and readers refuse an index
whose encoder is not theirs (rag.store.LiveIndex.current).
A SIGKILL anywhere before the switch leaves the old pointer, collection and docstore as they
were; the next run drops the half-built collection and builds again. The replaced
collection is kept until the next publish, for requests still reading it. A sync that
changes nothing writes nothing. One writer at a time (rag.lock).
"""

import logging
import shutil
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from chromadb.errors import InternalError
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.ingestion import DocstoreStrategy, IngestionPipeline
from llama_index.core.schema import (
    BaseNode,
    Document,
    NodeRelationship,
    TextNode,
    TransformComponent,
)
from llama_index.core.storage.docstore import SimpleDocumentStore

from rag.cards import Card
from rag.durable import PARTIAL_SUFFIX, move_into_place, partial_of, storage_errors
from rag.errors import CardragError, EmptyCorpus, StorageError
from rag.lock import writer_lock
from rag.published import (
    DOCSTORE_DIR,
    LEGACY_DOCSTORE,
    Published,
    docstore_path,
    generation_name,
    is_generation_of,
    write_published,
)
from rag.store import CHROMA_DATABASE, CardStore, LiveIndex, create_collection

log = logging.getLogger("cardrag.ingest")
COPY_BATCH = 256  # cards copied per Chroma call: bounded memory, progress to report


@dataclass(frozen=True)
class IngestReport:
    added: int
    updated: int
    removed: int
    unchanged: int
    seconds: float

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def card_document(card: Card) -> Document:
    """One document per card; its id is the card id and its hash covers every field."""
    metadata = card.to_metadata()
    return Document(
        id_=card.id,
        text=card.embedding_text(),
        metadata=metadata,
        excluded_embed_metadata_keys=list(metadata),
        excluded_llm_metadata_keys=list(metadata),
    )


class CardToNode(TransformComponent):
    """Turns each card document into exactly one node with the same id and the card as its
    source. Cards are short, so there is no splitting: a card is the unit of citation.

    Why not pass documents straight to the embedder: Chroma's `document_id` comes from the
    node's source, and the pipeline deletes by it when a card changes or goes; a document
    has no source, so deletes would match nothing and stale copies would pile up. Why not
    a LlamaIndex splitter: it gives nodes random ids, and we want Chroma ids = card ids.
    """

    def __call__(self, nodes: Sequence[BaseNode], **kwargs: Any) -> list[BaseNode]:
        # Ordered by length: the embedder encodes nodes 32 at a time in the order given and
        # pads each batch to its longest text. In deck order that encodes 1.58× the tokens
        # of the cards (measured on 1k synthetic cards); sorted, 1.02×, as the encoder does
        # when handed all texts at once (docs/BENCHMARKS.md). Order means nothing to Chroma.
        return sorted(
            (self._node(node) for node in nodes), key=lambda node: len(node.get_content())
        )

    @staticmethod
    def _node(node: BaseNode) -> TextNode:
        return TextNode(
            id_=node.id_,
            text=node.get_content(),
            metadata=dict(node.metadata),
            excluded_embed_metadata_keys=list(node.metadata),
            excluded_llm_metadata_keys=list(node.metadata),
            relationships={NodeRelationship.SOURCE: node.as_related_node_info()},
        )


class CardIndexer:
    """Syncs the index with a full set of cards: the set given is the whole truth."""

    def __init__(self, live: LiveIndex, embedder: BaseEmbedding):
        self.live = live
        self.client = live.client
        self.data_dir = live.data_dir
        self.base = live.base
        self.embedder = embedder
        self._holder: int | None = None  # the thread holding the writer lock, if we hold it
        self.write_failure: str | None = None  # Chroma's error, once a write to it failed

    @contextmanager
    def writing(self) -> Iterator[None]:
        """Hold the data directory's writer lock across more than the sync: a caller that
        reads its card set (deck files) inside it syncs exactly what is on disk, with no
        other writer publishing in between. Re-entrant for the thread that holds it; any
        other writer, in this process or another, gets IndexBusy at once."""
        if self._holder == threading.get_ident():
            yield
            return
        self._refuse_after_failure()  # before a deck file or anything else is touched
        with writer_lock(self.data_dir):
            self._holder = threading.get_ident()
            try:
                yield
            finally:
                self._holder = None

    def sync(
        self, cards: Sequence[Card], show_progress: bool = False, *, allow_empty: bool = False
    ) -> IngestReport:
        """Make the index hold exactly `cards`. No cards at all is refused (EmptyCorpus)
        unless `allow_empty`: it would remove every card, and an empty or mistyped corpus
        folder is the usual way to get there by mistake."""
        if not cards and not allow_empty:
            raise EmptyCorpus(
                "no cards to sync: the index would lose every card it holds, so nothing was "
                "changed (allow_empty=True empties it on purpose)"
            )
        started = time.perf_counter()
        documents = [card_document(card) for card in cards]
        with storage_errors(self.data_dir), self.writing(), self._chroma_write_errors():
            published, store = self._live()
            docstore = _load_docstore(published.docstore_path(self.data_dir)) if published \
                else SimpleDocumentStore()  # fmt: skip
            live_ids = set(store.card_ids())
            _forget(docstore, keep=live_ids)  # a hash is only as good as the vector behind it
            counts = _diff(docstore, documents)
            if self.live.embedded_by_another_encoder(published):
                # Another encoder's vectors are not worth copying: every card is embedded
                # again, and the cards that were there count as updated.
                log.info("the cards were embedded by another encoder; embedding them all with %s",
                         self.live.encoder)  # fmt: skip
                counts["updated"] += counts.pop("unchanged")
                counts["unchanged"] = 0
                _forget(docstore, keep=set())
            self._drop_leftovers(keep=_names(published))
            if not any(counts[k] for k in ("added", "updated", "removed")) and \
                    live_ids == {d.id_ for d in documents}:  # fmt: skip
                log.info("nothing changed; %s stays live", store.name or "the empty index")
            else:
                self._build_and_publish(published, store, docstore, documents, show_progress)
        return IngestReport(**counts, seconds=round(time.perf_counter() - started, 3))

    @contextmanager
    def _chroma_write_errors(self) -> Iterator[None]:
        """Chroma's embedded client reports a write it could not make (a full disk: "Error
        in compaction: Failed to apply logs to the metadata segment") as an InternalError,
        and a later write through the same client, once space was freed, could hang for
        good in `Collection.add`, and /healthz with it (1.5.9, on a 30 MB tmpfs: in one of
        two runs). So the first one is a clear error, and this indexer writes no more
        (_refuse_after_failure): the served index is the published one, which the failed
        build never touched; a restart opens a new client."""
        try:
            yield
        except InternalError as exc:
            self.write_failure = (str(exc).strip().splitlines() or ["InternalError"])[0]
            raise self._failure_error() from None

    def _refuse_after_failure(self) -> None:
        if self.write_failure is not None:
            raise self._failure_error()

    def _failure_error(self) -> StorageError:
        return StorageError(
            f"{self.live.chroma_dir}: the index could not be written (Chroma: "
            f"{self.write_failure}); the served index is unchanged. Check the free space and "
            "the permissions of the data directory, then restart cardrag: this process "
            "writes no more to the index"
        )

    def _live(self) -> tuple[Published | None, CardStore]:
        published, store = self.live.snapshot()
        if published is None and (legacy_cards := store.count()):  # legacy: generation 0
            published = Published(collection=store.name, generation=0, cards=legacy_cards)
        return published, store

    def _build_and_publish(
        self,
        live: Published | None,
        store: CardStore,
        docstore: SimpleDocumentStore,
        documents: Sequence[Document],
        show_progress: bool,
    ) -> None:
        generation = (live.generation if live else 0) + 1
        name = generation_name(self.base, generation)
        log.info("building %s beside %s", name, live.collection if live else "nothing")
        new = create_collection(self.client, name)
        unchanged = [d.id_ for d in documents if docstore.get_document_hash(d.id_) == d.hash]
        _copy(store, new, unchanged)
        # The docstore now lists exactly what the new collection holds, so the pipeline
        # embeds every other card and has nothing stale to delete.
        _forget(docstore, keep=set(unchanged))
        log.info("embedding %d new or changed cards", len(documents) - len(unchanged))
        IngestionPipeline(
            transformations=[CardToNode(), self.embedder],
            docstore=docstore,
            vector_store=CardStore(new).vector_store,  # adds in batches Chroma accepts
            docstore_strategy=DocstoreStrategy.UPSERTS_AND_DELETE,
            disable_cache=True,
        ).run(documents=documents, show_progress=show_progress)
        _check_complete(new, documents)
        _save_docstore(docstore, docstore_path(self.data_dir, name, generation))
        published = Published(collection=name, generation=generation, cards=len(documents),
                              previous=live.collection if live else None,
                              encoder=self.live.encoder)  # fmt: skip
        write_published(self.data_dir, published)
        log.info("published %s (%d cards)", name, len(documents))
        self._drop_leftovers(keep=_names(published))

    def _drop_leftovers(self, keep: set[str]) -> None:
        """Drop our collections and docstores that are neither live nor the one it replaced:
        half-built ones from killed runs, and generations older than the previous one."""
        for collection in self.client.list_collections():
            if collection.name not in keep and is_generation_of(self.base, collection.name):
                self.client.delete_collection(collection.name)
                log.info("dropped %s", collection.name)
        for path in (self.data_dir / DOCSTORE_DIR).glob("*.json*"):
            if path.name.removesuffix(PARTIAL_SUFFIX).removesuffix(".json") not in keep:
                path.unlink()
        if self.base not in keep:
            (self.data_dir / LEGACY_DOCSTORE).unlink(missing_ok=True)
        for orphan in _orphan_segment_dirs(self.live.chroma_dir):
            shutil.rmtree(orphan, ignore_errors=True)


def _orphan_segment_dirs(chroma_dir: Path) -> list[Path]:
    """Folders of vector segments Chroma no longer knows.

    Chroma 1.x in local mode does not remove a deleted collection's HNSW folder (chroma
    issue #5259: the garbage collector that would is not wired in), and every publish here
    deletes a collection, so without this the folders would pile up. A folder is removed
    only if it is named like a segment (a UUID) and Chroma's `segments` table, read
    read-only, has no such segment; if that table cannot be read, nothing is removed.
    """
    try:
        uri = f"file:{chroma_dir / CHROMA_DATABASE}?mode=ro"
        with closing(sqlite3.connect(uri, uri=True, timeout=30)) as connection:
            known = {row[0] for row in connection.execute("SELECT id FROM segments")}
    except sqlite3.Error as exc:
        log.info("left old segment folders alone: %s", exc)
        return []
    return [p for p in chroma_dir.iterdir()
            if p.is_dir() and _is_uuid(p.name) and p.name not in known]  # fmt: skip


def _is_uuid(name: str) -> bool:
    try:
        return str(uuid.UUID(name)) == name
    except ValueError:
        return False


def _names(published: Published | None) -> set[str]:
    if published is None:
        return set()
    return {published.collection} | ({published.previous} if published.previous else set())


def _copy(source: CardStore, target: Any, card_ids: Sequence[str]) -> None:
    """Copy stored vectors, metadata and text as they are: an unchanged card is not
    embedded again."""
    for start in range(0, len(card_ids), COPY_BATCH):
        batch = list(card_ids[start : start + COPY_BATCH])
        found = source.collection.get(ids=batch, include=["embeddings", "metadatas", "documents"])
        target.add(ids=found["ids"], embeddings=found["embeddings"],
                   metadatas=found["metadatas"], documents=found["documents"])  # fmt: skip
        log.info("copied %d/%d unchanged cards", start + len(batch), len(card_ids))


def _check_complete(collection: Any, documents: Sequence[Document]) -> None:
    """Never publish a collection that is not exactly the card set."""
    held = collection.get(include=[])["ids"]
    expected = {d.id_ for d in documents}
    if len(held) != len(expected) or set(held) != expected:
        raise CardragError(
            f"the new collection {collection.name} holds {len(held)} cards instead of "
            f"{len(expected)}; it was not published and the live index is unchanged"
        )
    log.info("checked %s: %d cards", collection.name, len(held))


def _forget(docstore: SimpleDocumentStore, keep: set[str]) -> None:
    for doc_id in list(docstore.get_all_document_hashes().values()):
        if doc_id not in keep:
            docstore.delete_document(doc_id, raise_error=False)


def _load_docstore(path: Path) -> SimpleDocumentStore:
    if path.is_file():
        return SimpleDocumentStore.from_persist_path(str(path))
    return SimpleDocumentStore()


def _save_docstore(docstore: SimpleDocumentStore, path: Path) -> None:
    # Written beside and renamed over: a crash mid-write never leaves a torn docstore.
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = partial_of(path)
    docstore.persist(persist_path=str(partial))
    move_into_place(partial, path)  # on disk before the pointer can name it


def _diff(docstore: SimpleDocumentStore, documents: Sequence[Document]) -> dict[str, int]:
    before = {doc_id: hash_ for hash_, doc_id in docstore.get_all_document_hashes().items()}
    added = updated = unchanged = 0
    for document in documents:
        previous = before.get(document.id_)
        if previous is None:
            added += 1
        elif previous != document.hash:
            updated += 1
        else:
            unchanged += 1
    removed = len(set(before) - {document.id_ for document in documents})
    return {"added": added, "updated": updated, "removed": removed, "unchanged": unchanged}

"""Ingestion: cards -> LlamaIndex nodes -> IngestionPipeline (docstore + Chroma).

The pipeline's docstore keeps one content hash per card id, and its UPSERTS_AND_DELETE
strategy embeds only new or changed cards and deletes removed ones from Chroma. We count
added / updated / removed / unchanged ourselves, before the run, from the same hashes,
because the pipeline does not report them.
"""

import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

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
from rag.store import CardStore


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

    def __init__(self, store: CardStore, embedder: BaseEmbedding, docstore_path: Path):
        self.store = store
        self.embedder = embedder
        self.docstore_path = docstore_path
        self.generation = 0  # bumped after every sync; in-memory indexes rebuild on change

    def sync(self, cards: Sequence[Card], show_progress: bool = False) -> IngestReport:
        started = time.perf_counter()
        documents = [card_document(card) for card in cards]
        docstore = _load_docstore(self.docstore_path)
        _drop_untracked(self.store, docstore)
        counts = _diff(docstore, documents)
        pipeline = IngestionPipeline(
            transformations=[CardToNode(), self.embedder],
            docstore=docstore,
            vector_store=self.store.vector_store,
            docstore_strategy=DocstoreStrategy.UPSERTS_AND_DELETE,
            disable_cache=True,
        )
        pipeline.run(documents=documents, show_progress=show_progress)
        _save_docstore(docstore, self.docstore_path)
        self.generation += 1
        return IngestReport(**counts, seconds=round(time.perf_counter() - started, 3))


def _drop_untracked(store: CardStore, docstore: SimpleDocumentStore) -> None:
    """Delete vectors the docstore does not know (left by a run that died before it saved
    the docstore), so the pipeline's upsert re-adds them cleanly instead of Chroma keeping
    a stale copy under the same id."""
    tracked = set(docstore.get_all_document_hashes().values())
    untracked = [cid for cid in store.card_ids() if cid not in tracked]
    if untracked:
        store.collection.delete(ids=untracked)


def _load_docstore(path: Path) -> SimpleDocumentStore:
    if path.is_file():
        return SimpleDocumentStore.from_persist_path(str(path))
    return SimpleDocumentStore()


def _save_docstore(docstore: SimpleDocumentStore, path: Path) -> None:
    # Written beside and renamed over: a crash mid-write leaves the old file whole.
    partial = path.with_suffix(".json.partial")
    docstore.persist(persist_path=str(partial))
    os.replace(partial, path)


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

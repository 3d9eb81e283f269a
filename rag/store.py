"""The Chroma side of the index: client, collection and card look-ups by id.

Vectors are always computed by our encoder and passed in: the collection is created with
no embedding function, so Chroma never downloads its default ONNX model.
"""

from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import chromadb
from chromadb.config import Settings as ChromaClientSettings
from llama_index.core.schema import BaseNode
from llama_index.vector_stores.chroma import ChromaVectorStore
from pydantic import PrivateAttr

from rag.cards import Card
from rag.errors import IndexUnavailable

CHROMA_SUBDIR = "chroma"


def chroma_client(data_dir: Path, url: str | None = None) -> Any:
    """The embedded database under data_dir, or a Chroma server when `url` is set (several
    API processes then share one index). The only place that picks between the two."""
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
    return chromadb.PersistentClient(path=str(data_dir / CHROMA_SUBDIR), settings=settings)


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
    """One Chroma collection of card vectors whose metadata carries the whole card."""

    def __init__(self, client: Any, collection_name: str, max_batch: int | None = None):
        self.client = client
        self.collection = client.get_or_create_collection(
            name=collection_name,
            embedding_function=None,
            metadata={"hnsw:space": "cosine"},
        )
        self.vector_store = BatchedChromaVectorStore.of(
            self.collection, max_batch or client.get_max_batch_size()
        )

    def count(self) -> int:
        return int(self.collection.count())

    def get_card(self, card_id: str) -> Card | None:
        found = self.collection.get(ids=[card_id], include=["metadatas"])
        metadatas = found.get("metadatas") or []
        return Card.from_metadata(metadatas[0]) if metadatas else None

    def card_ids(self) -> list[str]:
        return sorted(self.collection.get(include=[])["ids"])

    def vectors(self, card_ids: Sequence[str]) -> list[list[float]]:
        """Stored vectors of these cards, in the order asked (Chroma returns its own)."""
        found = self.collection.get(ids=list(card_ids), include=["embeddings"])
        by_id = dict(zip(found["ids"], found["embeddings"], strict=True))
        return [list(by_id[card_id]) for card_id in card_ids]

    def all_cards(self) -> list[Card]:
        found = self.collection.get(include=["metadatas"])
        return [Card.from_metadata(m) for m in found.get("metadatas") or []]

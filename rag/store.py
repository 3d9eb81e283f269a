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
from llama_index.vector_stores.chroma import ChromaVectorStore

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


class CardStore:
    """One Chroma collection of card vectors whose metadata carries the whole card."""

    def __init__(self, client: Any, collection_name: str):
        self.client = client
        self.collection = client.get_or_create_collection(
            name=collection_name,
            embedding_function=None,
            metadata={"hnsw:space": "cosine"},
        )
        self.vector_store = ChromaVectorStore(chroma_collection=self.collection)

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

"""Dense top-k retrieval over the Chroma collection through LlamaIndex."""

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from llama_index.core import VectorStoreIndex
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.vector_stores import (
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
)

from rag.cards import Card
from rag.store import CardStore


@dataclass(frozen=True)
class ScoredCard:
    card: Card
    score: float  # cosine similarity of question and card, in [-1, 1]


@dataclass(frozen=True)
class CardFilters:
    """Metadata filters; values within a field are OR-ed, fields are AND-ed."""

    topic: Sequence[str] = field(default_factory=tuple)
    difficulty: Sequence[str] = field(default_factory=tuple)
    deck: Sequence[str] = field(default_factory=tuple)

    def to_metadata_filters(self) -> MetadataFilters | None:
        filters = [
            MetadataFilter(key=key, value=list(values), operator=FilterOperator.IN)
            for key, values in (
                ("topic", self.topic),
                ("difficulty", self.difficulty),
                ("deck", self.deck),
            )
            if values
        ]
        if not filters:
            return None
        return MetadataFilters(filters=filters, condition=FilterCondition.AND)


class CardRetriever:
    def __init__(self, store: CardStore, embedder: BaseEmbedding):
        self._store = store
        self._index = VectorStoreIndex.from_vector_store(store.vector_store, embed_model=embedder)

    def search(self, query: str, k: int, filters: CardFilters | None = None) -> list[ScoredCard]:
        if self._store.count() == 0:
            return []
        retriever = self._index.as_retriever(
            similarity_top_k=k,
            filters=filters.to_metadata_filters() if filters else None,
        )
        return [
            ScoredCard(card=Card.from_metadata(hit.node.metadata), score=_cosine(hit.score))
            for hit in retriever.retrieve(query)
        ]


def _cosine(chroma_score: float | None) -> float:
    """LlamaIndex's Chroma store reports exp(-distance); in a cosine-space collection the
    distance is 1 - cosine, so this recovers the cosine, a scale thresholds can be set on."""
    if not chroma_score:
        return -1.0
    return 1.0 + math.log(chroma_score)

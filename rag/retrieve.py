"""Dense top-k retrieval over the Chroma collection through LlamaIndex."""

import math

from llama_index.core import VectorStoreIndex
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.schema import QueryBundle

from rag.cards import Card
from rag.hits import CardFilters, ScoredCard
from rag.store import CardStore


class CardRetriever:
    def __init__(self, store: CardStore, embedder: BaseEmbedding):
        self._store = store
        self._index = VectorStoreIndex.from_vector_store(store.vector_store, embed_model=embedder)

    def search(
        self,
        query: str,
        k: int,
        filters: CardFilters | None = None,
        embedding: list[float] | None = None,
    ) -> list[ScoredCard]:
        """Top-k cards by cosine; pass `embedding` to reuse a query vector already computed."""
        if self._store.count() == 0:
            return []
        retriever = self._index.as_retriever(
            similarity_top_k=k,
            filters=filters.to_metadata_filters() if filters else None,
        )
        hits = retriever.retrieve(QueryBundle(query_str=query, embedding=embedding))
        return [
            ScoredCard(card=Card.from_metadata(hit.node.metadata), score=_cosine(hit.score))
            for hit in hits
        ]


def _cosine(chroma_score: float | None) -> float:
    """LlamaIndex's Chroma store reports exp(-distance); in a cosine-space collection the
    distance is 1 - cosine, so this recovers the cosine, a scale thresholds can be set on."""
    if not chroma_score:
        return -1.0
    return 1.0 + math.log(chroma_score)

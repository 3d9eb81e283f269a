"""Dense top-k retrieval over the live Chroma collection through LlamaIndex."""

import math

from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.vector_stores import VectorStoreQuery

from rag.cards import Card
from rag.hits import CardFilters, ScoredCard, Searched
from rag.store import CardStore, LiveIndex


class CardRetriever:
    def __init__(self, live: LiveIndex, embedder: BaseEmbedding):
        self._live = live
        self._embedder = embedder

    def search(
        self,
        query: str,
        k: int,
        filters: CardFilters | None = None,
        embedding: list[float] | None = None,
    ) -> list[ScoredCard]:
        """Top-k cards by cosine; pass `embedding` to reuse a query vector already computed."""
        embedding = embedding or self._embedder.get_query_embedding(query)
        return self._live.read(lambda store: self.search_in(store, embedding, k, filters))

    def read_and_search(
        self, query: str, k: int, filters: CardFilters | None = None
    ) -> Searched:
        """Dense retrieval reads the query as given (spelling correction is hybrid's)."""
        return Searched(query, query, self.search(query, k, filters))

    def prepare(self) -> None:
        """Nothing to build: dense search keeps no index of its own beside Chroma's."""

    def search_in(
        self, store: CardStore, embedding: list[float], k: int, filters: CardFilters | None
    ) -> list[ScoredCard]:
        """Top-k in one given collection (a hybrid search pins one for all its parts)."""
        # No count() round trip before each query (~3.5 ms, 6 % of a search's CPU at 10k
        # cards): an empty collection answers an empty list, and so does EmptyStore.
        result = store.vector_store.query(
            VectorStoreQuery(
                query_embedding=embedding,
                similarity_top_k=k,
                filters=filters.to_metadata_filters() if filters else None,
            )
        )
        return [
            ScoredCard(card=Card.from_metadata(node.metadata), score=_cosine(score))
            for node, score in zip(result.nodes or [], result.similarities or [], strict=True)
        ]


def _cosine(chroma_score: float | None) -> float:
    """LlamaIndex's Chroma store reports exp(-distance); in a cosine-space collection the
    distance is 1 - cosine, so this recovers the cosine, a scale thresholds can be set on."""
    if not chroma_score:
        return -1.0
    return 1.0 + math.log(chroma_score)

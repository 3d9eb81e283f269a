"""cardrag's retriever: dense and BM25 fused by weighted reciprocal rank.

- dense over whole cards (question and both answers), through Chroma;
- BM25 over the cards (rag.lexical): exact terms, abbreviations, rare words.

Fused by weighted reciprocal-rank fusion keyed by card id. Not LlamaIndex's
QueryFusionRetriever: its reciprocal-rank mode takes no weights, and the weights measured
best on the eval's dev split are unequal (docs/EVALS.md). A separate embedding of the card's
question alone was built and measured too; it lowered MRR in every combination tried, so
it is not part of the retriever (docs/EVALS.md, "what did not help").

The score a result carries is its cosine (computed from the stored vector for a card only
BM25 found), so thresholds keep one meaning whatever the ranking: the list is ordered by
fused rank, and scores need not descend.
"""

from collections.abc import Callable
from dataclasses import dataclass

from llama_index.core.base.embeddings.base import BaseEmbedding

from rag.hits import CardFilters, ScoredCard
from rag.lexical import LexicalIndex
from rag.retrieve import CardRetriever
from rag.similarity import cosines
from rag.store import CardStore


@dataclass(frozen=True)
class Fusion:
    dense: float = 1.0
    lexical: float = 0.25
    rrf_k: int = 5


class HybridRetriever:
    def __init__(
        self,
        embedder: BaseEmbedding,
        dense: CardRetriever,
        store: CardStore,
        generation: Callable[[], int],
        fusion: Fusion = Fusion(),
        depth: int = 20,
    ):
        self.embedder = embedder
        self.dense = dense
        self.store = store
        self.fusion = fusion
        self.depth = depth
        self._generation = generation
        self._lexical: LexicalIndex | None = None
        self._lexical_key: tuple[int, int] | None = None

    def search(self, query: str, k: int, filters: CardFilters | None = None) -> list[ScoredCard]:
        embedding = self.embedder.get_query_embedding(query)
        depth = max(self.depth, k)
        dense = self.dense.search(query, depth, filters, embedding)
        lexical = self.lexical().search(query, depth, filters)
        fused: dict[str, float] = {}
        found: dict[str, ScoredCard] = {}
        for weight, hits in ((self.fusion.dense, dense), (self.fusion.lexical, lexical)):
            for rank, hit in enumerate(hits, start=1):
                share = weight / (self.fusion.rrf_k + rank)
                fused[hit.card.id] = fused.get(hit.card.id, 0.0) + share
                found.setdefault(hit.card.id, hit)
        cosine = {hit.card.id: hit.score for hit in dense}
        top = sorted(fused, key=lambda card_id: -fused[card_id])[:k]
        lexical_only = [cid for cid in top if cid not in cosine]
        if lexical_only:
            found_cosines = cosines([embedding], self.store.vectors(lexical_only))[0]
            cosine.update(zip(lexical_only, map(float, found_cosines), strict=True))
        return [ScoredCard(found[cid].card, cosine[cid]) for cid in top]

    def lexical(self) -> LexicalIndex:
        """The BM25 index, rebuilt from Chroma when an ingest ran or the count changed."""
        key = (self._generation(), self.store.count())
        if self._lexical is None or key != self._lexical_key:
            self._lexical = LexicalIndex(self.store.all_cards())
            self._lexical_key = key
        return self._lexical

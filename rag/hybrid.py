"""cardrag's retriever: dense and BM25 fused by weighted reciprocal rank.

- dense over whole cards (question and both answers), through Chroma;
- BM25 over the cards (rag.lexical): exact terms, abbreviations, rare words.

Fused by weighted reciprocal-rank fusion keyed by card id. Not LlamaIndex's
QueryFusionRetriever: its reciprocal-rank mode takes no weights, and the weights measured
best on the eval's dev split are unequal (docs/EVALS.md). A separate embedding of the card's
question alone was built and measured too; it lowered MRR in every combination tried, so
it is not part of the retriever (docs/EVALS.md, "what did not help").

Queries are spelling-corrected into the corpus's words first (rag.spelling; both sides read
the corrected query), unless `spelling` is off.

One search reads one collection: the live one when it starts (rag.store.LiveIndex.read),
even if an ingest publishes another meanwhile, so dense hits, BM25 hits and stored vectors
always describe the same card set.

The score a result carries is its cosine (computed from the stored vector for a card only
BM25 found), so thresholds keep one meaning whatever the ranking: the list is ordered by
fused rank, and scores need not descend.
"""

import threading
from dataclasses import dataclass

from llama_index.core.base.embeddings.base import BaseEmbedding

from rag.hits import CardFilters, ScoredCard, Searched
from rag.lexical import LexicalIndex
from rag.similarity import cosines
from rag.spelling import SpellingCorrector
from rag.store import CardStore, LiveIndex


@dataclass(frozen=True)
class CollectionIndexes:
    """What a search builds once per published collection: BM25 and the speller."""

    name: str
    lexical: LexicalIndex
    spelling: SpellingCorrector | None

    def corrected(self, query: str) -> str:
        return self.spelling.correct(query) if self.spelling else query


@dataclass(frozen=True)
class Fusion:
    dense: float = 1.0
    lexical: float = 0.25
    rrf_k: int = 5


class HybridRetriever:
    def __init__(
        self,
        embedder: BaseEmbedding,
        live: LiveIndex,
        fusion: Fusion = Fusion(),
        depth: int = 20,
        spelling: bool = True,
    ):
        self.embedder = embedder
        self.live = live
        self.fusion = fusion
        self.depth = depth
        self.spelling = spelling
        self._indexes: CollectionIndexes | None = None
        self._building = threading.Lock()

    def search(
        self,
        query: str,
        k: int,
        filters: CardFilters | None = None,
        embedding: list[float] | None = None,
    ) -> list[ScoredCard]:
        """BM25 always reads `query` (spelling-corrected); the dense side searches with
        `embedding` when given (an answer's HyDE vector), and the scores are cosines to
        that vector."""
        return self.read_and_search(query, k, filters, embedding).hits

    def read_and_search(
        self,
        query: str,
        k: int,
        filters: CardFilters | None = None,
        embedding: list[float] | None = None,
    ) -> Searched:
        """The hits with the query as search read it (spelling-corrected), from one read of
        the live collection: what a search response reports besides its results."""
        read, hits = self.live.read(lambda store: self._search(store, query, embedding, k, filters))
        return Searched(query, read, hits)

    def prepare(self) -> None:
        """Build the live collection's BM25 index and speller now (at start-up) rather than
        in the first search, which otherwise pays for them: the first search took 463 ms on
        the shipped corpus, 28 ms with this (bench.search_latency); seconds at 100k cards."""
        self.live.read(self.indexes)

    def _search(
        self,
        store: CardStore,
        query: str,
        embedding: list[float] | None,
        k: int,
        filters: CardFilters | None,
    ) -> tuple[str, list[ScoredCard]]:
        depth = max(self.depth, k)
        indexes = self.indexes(store)
        query = indexes.corrected(query)
        embedding = embedding or self.embedder.get_query_embedding(query)
        index = indexes.lexical
        # Dense candidates as ids and cosines only; the cards come from the BM25 index,
        # which holds this same collection's cards in memory.
        dense = [ScoredCard(index.by_id[card_id], cosine)
                 for card_id, cosine in store.nearest(embedding, depth, filters)]  # fmt: skip
        lexical = index.search(query, depth, filters)
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
            found_cosines = cosines([embedding], store.vectors(lexical_only))[0]
            cosine.update(zip(lexical_only, map(float, found_cosines), strict=True))
        return query, [ScoredCard(found[cid].card, cosine[cid]) for cid in top]

    def indexes(self, store: CardStore) -> CollectionIndexes:
        """BM25 and the speller of this collection: built once per published collection
        (they never change), so rebuilt exactly when an ingest has published a new one."""
        built = self._indexes
        if built is not None and built.name == store.name:
            return built
        with self._building:  # one build per new collection, however many searches wait
            if self._indexes is None or self._indexes.name != store.name:
                cards = store.all_cards()
                spelling = SpellingCorrector(cards) if self.spelling else None
                self._indexes = CollectionIndexes(store.name, LexicalIndex(cards), spelling)
            return self._indexes

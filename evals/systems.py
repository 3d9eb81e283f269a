"""The retrieval systems `cardrag eval` compares, all over the same cards and encoder."""

from llama_index.core import Document, VectorStoreIndex
from llama_index.core.base.embeddings.base import BaseEmbedding

from rag.cards import Card
from rag.components import Components
from rag.hits import CardFilters, Retriever, ScoredCard
from rag.lexical import LexicalIndex


class LlamaIndexDefault:
    """What LlamaIndex gives with its defaults: VectorStoreIndex.from_documents over one
    document per card (default SentenceSplitter chunking, default metadata handling, the
    in-memory vector store), with the same encoder. Chunks are mapped back to their card."""

    def __init__(self, cards: list[Card], embedder: BaseEmbedding):
        documents = [
            Document(
                text=card.embedding_text(),
                metadata={"card_id": card.id, "topic": card.topic,
                          "difficulty": card.difficulty, "deck": card.deck},
            )  # fmt: skip
            for card in cards
        ]
        self._cards = {card.id: card for card in cards}
        self._index = VectorStoreIndex.from_documents(documents, embed_model=embedder)

    def search(self, query: str, k: int, filters: CardFilters | None = None) -> list[ScoredCard]:
        hits = self._index.as_retriever(similarity_top_k=k * 2).retrieve(query)
        ranked: dict[str, float] = {}
        for hit in hits:
            ranked.setdefault(hit.node.metadata["card_id"], float(hit.score or 0.0))
        return [ScoredCard(self._cards[cid], score) for cid, score in list(ranked.items())[:k]]


def build_systems(components: Components) -> dict[str, Retriever]:
    """Baselines first, cardrag's configured retriever last."""
    cards = components.store.all_cards()
    return {
        "bm25": LexicalIndex(cards),
        "dense": components.dense,
        "llamaindex-default": LlamaIndexDefault(cards, components.embedder),
        "cardrag": components.retriever,
    }

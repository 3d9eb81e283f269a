"""The retrieval systems `cardrag eval` compares, all over the same cards and encoder."""

from llama_index.core import Document, VectorStoreIndex
from llama_index.core.base.embeddings.base import BaseEmbedding

from rag.cards import Card
from rag.components import Components
from rag.deadline import Deadline
from rag.expansion import HypotheticalAnswer
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


class AnswerRetrieval:
    """cardrag's retriever as /v1/ask uses it, with the question's HyDE vector
    (rag.expansion): the same Answerer.expanded_search, so one LLM call per question. The
    answer path only expands questions that clear the gate; this expands every question,
    which ranks in-corpus questions the same way (the gate refuses ~2 % of them)."""

    def __init__(self, components: Components):
        a, settings = components.answerer, components.settings
        max_tokens = settings.retrieval.expansion_max_tokens
        expander = a.expander or HypotheticalAnswer(components.embedder, max_tokens)
        self._answerer = a.replaced(expander=expander)
        self._timeout = settings.llm.timeout

    def search(self, query: str, k: int, filters: CardFilters | None = None) -> list[ScoredCard]:
        searched = self._answerer.retriever.read_and_search(query, k, filters)
        deadline = Deadline(self._timeout)
        expanded = self._answerer.expanded_search(searched.read, k, filters, deadline)
        # No usable passage: the answer path falls back to the question's own hits.
        return searched.hits if expanded is None else expanded


def build_systems(components: Components, hyde: bool = False) -> dict[str, Retriever]:
    """Baselines first, cardrag's configured retriever next; with `hyde`, also cardrag's
    retriever with the answers' HyDE expansion (needs the LLM: ~8 s per question)."""
    cards = components.store.all_cards()
    systems: dict[str, Retriever] = {
        "bm25": LexicalIndex(cards),
        "dense": components.dense,
        "llamaindex-default": LlamaIndexDefault(cards, components.embedder),
        "cardrag": components.retriever,
    }
    if hyde:
        systems["cardrag+hyde"] = AnswerRetrieval(components)
    return systems

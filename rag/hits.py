"""What retrieval returns and how it is filtered; shared by every retriever."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from llama_index.core.vector_stores import (
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
)

from rag.cards import Card


@dataclass(frozen=True)
class ScoredCard:
    card: Card
    score: float  # cosine similarity of question and card, in [-1, 1]


@dataclass(frozen=True)
class Searched:
    """One search: the query as asked, as the retriever read it (spelling-corrected), and
    its hits. Search responses report the correction; answers expand the query as read."""

    asked: str
    read: str
    hits: list[ScoredCard]

    @property
    def correction(self) -> str | None:
        """The query as read, or None when the retriever read it as asked."""
        return self.read if self.read != self.asked else None


@dataclass(frozen=True)
class CardFilters:
    """Metadata filters; values within a field are OR-ed, fields are AND-ed."""

    topic: Sequence[str] = field(default_factory=tuple)
    difficulty: Sequence[str] = field(default_factory=tuple)
    deck: Sequence[str] = field(default_factory=tuple)

    FIELDS = ("topic", "difficulty", "deck")

    def active(self) -> list[tuple[str, list[str]]]:
        """(field, allowed values) for every field that restricts anything."""
        return [(name, list(values)) for name in self.FIELDS if (values := getattr(self, name))]

    def matches(self, card: Card) -> bool:
        """The same rule as the retrievers' filters, for a card already in hand."""
        return all(getattr(card, name) in values for name, values in self.active())

    def to_metadata_filters(self) -> MetadataFilters | None:
        filters = [
            MetadataFilter(key=key, value=values, operator=FilterOperator.IN)
            for key, values in self.active()
        ]
        if not filters:
            return None
        return MetadataFilters(filters=filters, condition=FilterCondition.AND)


class Retriever(Protocol):
    """Anything that ranks cards for a query: dense, BM25, hybrid, the eval baselines."""

    def search(self, query: str, k: int, filters: CardFilters | None = None) -> list[ScoredCard]:
        ...


class VectorRetriever(Retriever, Protocol):
    """A retriever that can also search with a query vector made elsewhere: an answer's
    HyDE vector (rag.expansion), or a vector already computed for the same query."""

    def search(
        self,
        query: str,
        k: int,
        filters: CardFilters | None = None,
        embedding: list[float] | None = None,
    ) -> list[ScoredCard]:
        ...

    def read_and_search(
        self, query: str, k: int, filters: CardFilters | None = None
    ) -> Searched:
        """The hits with the query as this retriever read it, from one search: a vector
        made elsewhere for the query (HyDE) is made from the query as read."""
        ...

    def prepare(self) -> None:
        """Build now what the first search would otherwise build (called at start-up)."""
        ...

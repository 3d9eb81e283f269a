"""What retrieval returns and how it is filtered; shared by every retriever."""

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from llama_index.core.vector_stores import (
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
)

from rag.cards import DIFFICULTIES, SLUG_PATTERN, Card
from rag.errors import CardragError

FILTER_VALUE_MAX_CHARS = 80  # one filter value; the HTTP API's schema uses it too
_SLUG = re.compile(SLUG_PATTERN)


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


def checked_filters(
    topic: Sequence[str] = (), difficulty: Sequence[str] = (), deck: Sequence[str] = ()
) -> CardFilters:
    """Filters typed by a user, held to the rules the HTTP API's schema enforces with a 422:
    topics and decks are slugs, difficulties are known ones. Unchecked, a typo ("trivial",
    "Transformers") matches no card and reads as "no card matches", not as a mistake."""
    for name, values in (("topic", topic), ("deck", deck)):
        for value in values:
            if not _SLUG.match(value) or len(value) > FILTER_VALUE_MAX_CHARS:
                raise CardragError(
                    f"{name} {value!r}: use lower-case letters, digits, '-' or '_' "
                    f"(at most {FILTER_VALUE_MAX_CHARS} characters)"
                )
    for value in difficulty:
        if value not in DIFFICULTIES:
            raise CardragError(f"difficulty {value!r}: use one of {', '.join(DIFFICULTIES)}")
    return CardFilters(topic=tuple(topic), difficulty=tuple(difficulty), deck=tuple(deck))


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

"""Study lookups over the card catalogue: browse with filters, facets, related cards.

The catalogue is the card metadata Chroma already holds (rag.store), so these need no second
store. Browsing filters in Python rather than through Chroma's where-clauses: the page needs
the total count as well as one page, and a deck of cards is small enough to read whole.
"""

from collections import Counter
from dataclasses import dataclass

from rag.cards import DIFFICULTIES, Card
from rag.errors import CardNotFound
from rag.hits import CardFilters, ScoredCard
from rag.retrieve import CardRetriever
from rag.store import CardStore, LiveIndex


@dataclass(frozen=True)
class CardPage:
    cards: list[Card]
    total: int  # cards matching the filters, across all pages


def browse(cards: list[Card], filters: CardFilters, offset: int, limit: int) -> CardPage:
    """One page of the cards matching the filters, in a stable order (deck, topic, id)."""
    matching = sorted(
        (card for card in cards if filters.matches(card)),
        key=lambda card: (card.deck, card.topic, card.id),
    )
    return CardPage(cards=matching[offset : offset + limit], total=len(matching))


def facets(cards: list[Card]) -> dict[str, list[tuple[str, int]]]:
    """For each filter field, its values with their card counts (what a filter menu lists)."""
    result = {}
    for name in CardFilters.FIELDS:
        counts = Counter(getattr(card, name) for card in cards)
        order = DIFFICULTIES if name == "difficulty" else sorted(counts)
        result[name] = [(value, counts[value]) for value in order if value in counts]
    return result


def related_cards(
    store: LiveIndex,
    dense: CardRetriever,
    card_id: str,
    k: int,
    filters: CardFilters | None = None,
) -> list[ScoredCard]:
    """The k cards nearest to this one by embedding, itself excluded. The card's stored
    vector is the query, so nothing is embedded again. One collection answers all of it,
    even if an ingest publishes another meanwhile."""

    def in_one(collection: CardStore) -> list[ScoredCard]:
        vector = collection.vector_of(card_id)  # one read: the card's existence and vector
        if vector is None:
            raise CardNotFound(f"no card with id {card_id!r}")
        hits = dense.search_in(collection, vector, k + 1, filters)
        return [hit for hit in hits if hit.card.id != card_id][:k]

    return store.read(in_one)

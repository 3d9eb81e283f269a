"""BM25 over the cards (bm25s), with metadata filters as weight masks.

bm25s directly rather than LlamaIndex's BM25Retriever: the latter builds a filter mask by
calling a Python predicate per card on every filtered query and raises when a filter
matches nothing (we want an empty result), and it cannot weight the question field.
Cards are tokenised with CamelCase split as well as kept whole, so "layer norm" matches
"LayerNorm" and "LayerNorm" matches "layernorm".
"""

import re
from collections.abc import Sequence

import bm25s
import numpy as np
import Stemmer

from rag.cards import Card
from rag.hits import CardFilters, ScoredCard

_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")
_WORDISH = re.compile(r"[A-Za-z][A-Za-z0-9]*")
STEMMER = Stemmer.Stemmer("english")  # shared with rag.grounding: one stemming everywhere
_WORD = re.compile(r"[a-z0-9]+")


def words(text: str) -> list[str]:
    """Lower-case alphanumeric words: the one word split of grounding, the output guard
    and the hashing test embedder."""
    return _WORD.findall(text.lower())


def expand_compounds(text: str) -> str:
    """'LayerNorm and BatchNorm' -> 'LayerNorm Layer Norm and BatchNorm Batch Norm'."""
    def expand(match: re.Match[str]) -> str:
        word = match.group(0)
        parts = _CAMEL.split(word)
        return word if len(parts) == 1 else f"{word} {' '.join(parts)}"

    return _WORDISH.sub(expand, text)


def _tokenize(texts: Sequence[str]) -> list[list[str]]:
    return bm25s.tokenize(
        [expand_compounds(t) for t in texts], stopwords="en", stemmer=STEMMER,
        show_progress=False, return_ids=False,
    )  # fmt: skip


class LexicalIndex:
    """An in-memory BM25 index of the cards; rebuilt whenever the card set changes."""

    def __init__(self, cards: Sequence[Card], question_weight: int = 1):
        self.cards = list(cards)
        self.by_id = {card.id: card for card in self.cards}
        self._fields = {
            name: np.array([getattr(c, name) for c in self.cards]) for name in CardFilters.FIELDS
        }
        self._bm25 = bm25s.BM25()
        if self.cards:
            texts = [indexed_text(card, question_weight) for card in self.cards]
            self._bm25.index(_tokenize(texts), show_progress=False)

    def search(self, query: str, k: int, filters: CardFilters | None = None) -> list[ScoredCard]:
        if not self.cards:
            return []
        mask = self._mask(filters)
        if mask is not None and not mask.any():
            return []
        tokens = _tokenize([query])
        if not any(tok in self._bm25.vocab_dict for tok in tokens[0]):
            return []
        ids, scores = self._bm25.retrieve(tokens, k=min(k, len(self.cards)),
                                          weight_mask=mask, show_progress=False)  # fmt: skip
        return [ScoredCard(self.cards[i], float(s)) for i, s in zip(ids[0], scores[0], strict=True)
                if s > 0]  # fmt: skip

    def _mask(self, filters: CardFilters | None) -> np.ndarray | None:
        if filters is None:
            return None
        mask = np.ones(len(self.cards), dtype=bool)
        for name, values in filters.active():
            mask &= np.isin(self._fields[name], values)
        return None if mask.all() else mask.astype(np.float32)


def indexed_text(card: Card, question_weight: int = 1) -> str:
    """The text of a card that BM25 indexes (and whose words the speller knows)."""
    questions = " ".join([card.question] * question_weight)
    return f"{questions}\n{card.short_answer}\n{card.long_answer}\n{' '.join(card.tags)}"

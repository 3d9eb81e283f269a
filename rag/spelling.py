"""Spelling correction of queries into the corpus's own words.

all-MiniLM-L6-v2 splits a misspelt word into unrelated word pieces and BM25 finds no such
term, so "vison transformer" or "droput" lost their card (held-out typo questions: MRR
0.758 against 0.962 on dev). Only words that neither English nor the corpus knows are
touched, and only into words of the corpus: a query about "chatbots" or "backprop" stays as
written (correcting into any English word turned them into "chariots" and "backdrop",
docs/EVALS.md). Measured on the eval's held-out split: MRR 0.811 -> 0.842.

symspellpy (symmetric-delete look-up; its bundled 82,765-word English frequency list is
the "known English" test) rather than a hand-written edit distance over every corpus word:
a look-up costs microseconds whatever the vocabulary size.
"""

import functools
import importlib.resources
import re
from collections import Counter
from collections.abc import Iterable

from symspellpy import SymSpell, Verbosity

from rag.cards import Card
from rag.lexical import STEMMER, indexed_text, words

# A word with an apostrophe ("doesn't", "model's") is left alone: the corpus has few of them.
_TOKEN = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?")
MIN_LENGTH = 4  # shorter words have too many neighbours at distance 1 to guess from
LONG_WORD = 7  # from this length on, two edits away is still a safe guess
# symspellpy indexes the deletes of each word's first PREFIX_LENGTH letters. 5 instead of
# its default 7: at 100k distinct words the index takes 110 MB instead of 432 and builds in
# 2.1 s instead of 5.6, and every eval question is corrected alike (bench.spelling_scale;
# only 3 of 500 synthetic typos resolve a tie between equally near words differently).
PREFIX_LENGTH = 5


@functools.cache
def english_words() -> frozenset[str]:
    """The words of symspellpy's English frequency list (loaded once per process)."""
    path = importlib.resources.files("symspellpy") / "frequency_dictionary_en_82_765.txt"
    lines = path.read_text(encoding="utf-8").splitlines()
    return frozenset(line.split(" ", 1)[0] for line in lines if line)


@functools.cache
def _english_stems() -> frozenset[str]:
    return frozenset(STEMMER.stemWords(list(english_words())))


def corpus_vocabulary(cards: Iterable[Card]) -> Counter[str]:
    """How often each word occurs in the cards' text (what BM25 indexes)."""
    counts: Counter[str] = Counter()
    for card in cards:
        counts.update(words(indexed_text(card)))
    return counts


class SpellingCorrector:
    """Rewrites the unknown words of a query into the nearest word of one card set."""

    def __init__(self, cards: Iterable[Card], prefix_length: int = PREFIX_LENGTH):
        self.vocabulary = corpus_vocabulary(cards)
        self._stems = frozenset(STEMMER.stemWords(list(self.vocabulary)))
        _english_stems()  # once per process (~0.2 s), with the index rather than in a query
        self._index = SymSpell(max_dictionary_edit_distance=2, prefix_length=prefix_length)
        for word, count in self.vocabulary.items():
            if word.isalpha() and len(word) >= MIN_LENGTH:
                self._index.create_dictionary_entry(word, count)

    def correct(self, query: str) -> str:
        return _TOKEN.sub(self._correct_word, query)

    def _correct_word(self, match: re.Match[str]) -> str:
        word = match.group(0)
        if not self._worth_correcting(word):
            return word
        lower = word.lower()
        distance = 2 if len(lower) >= LONG_WORD else 1
        suggestions = self._index.lookup(lower, Verbosity.TOP, max_edit_distance=distance)
        return suggestions[0].term if suggestions else word

    def _worth_correcting(self, word: str) -> bool:
        """Unknown, lower-case or capitalised words only: acronyms and CamelCase names
        (RoPE, GPTQ, LayerNorm) are names, not typos."""
        lower = word.lower()
        if "'" in word or len(lower) < MIN_LENGTH:
            return False
        if not (word.islower() or (word[0].isupper() and word[1:].islower())):
            return False
        if lower in self.vocabulary or lower in english_words():
            return False
        # An inflection of a known word ("sublayers", "memorises") is not a typo.
        stem = STEMMER.stemWord(lower)
        return stem not in self._stems and stem not in _english_stems()

"""Sentence-level grounding: every cited sentence points at the card that supports it.

Small models cite unreliably (measured: both bundled Qwen sizes leave sentences uncited or
cite the wrong card of two). After generation each sentence is compared with the cards the
model was shown, on two signals:
- meaning: the best cosine between the sentence and any one sentence of the card (its
  question and answers, split into sentences; the encoder is already loaded for retrieval,
  and the card sentences' vectors are shared with the instruction probe, which read them
  before generation). Until session 14 the sentence was compared with the whole card's
  vector, which a short correct sentence ("It is disabled during inference.") cannot
  approach: replayed on session 12's 180 drafts, comparing sentence with sentence at 0.45
  raised citation precision (dev 0.825 -> 0.850, held-out 0.855 -> 0.884) and refused one
  fewer held-out question (docs/EVALS.md);
- words: the share of the sentence's content words (stemmed, stop words out) that occur in
  the card. Measured on answers to out-of-corpus questions that slipped past the retrieval
  threshold ("Bert on Sesame Street", "oven temperature"), the cosine alone still found
  "support" through one shared word; the word share did not (at most 0.36 there, against
  0.4-1.0 for most sentences of in-corpus answers).
A card supports a sentence when both reach their floors. A marker the support agrees with
is kept; a wrong or missing one is replaced by the best-supporting card; a sentence no card
supports keeps no marker and makes the answer ungrounded.

Optionally (`min_relevance`, off by default), a sentence that bears on neither the question
nor the question of the card it cites is removed: what a poisoned card can add that answers
nothing asked. Measured in session 15 (docs/EVALS.md): it fixed 3 of 9 in-sample canary
answers and none on a later blind set.
"""

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from bm25s.stopwords import STOPWORDS_EN_PLUS

from rag.cards import Card
from rag.citations import markers_in, strip_markers
from rag.lexical import STEMMER, words
from rag.similarity import SentenceVectors, cosines

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_LEADING_MARKERS = re.compile(r"^((?:\[\d+\]\s*)+)")
# Abbreviations common in study answers whose full stop is not a sentence end ("etc." often
# is one, so it is not listed).
_ABBREVIATION_END = re.compile(r"(?:\b(?:e\.g|i\.e|et al|vs|cf|approx|resp|fig|eq)\.)$", re.I)
_TRAILING_PUNCT = re.compile(r"([.!?:;]+)$")
_STOPWORDS = frozenset(STOPWORDS_EN_PLUS)


@dataclass(frozen=True)
class GroundedText:
    text: str
    cited: tuple[int, ...]  # card numbers in order of first appearance
    grounded: bool  # every sentence is supported by a card it cites
    citing: dict[int, list[str]]  # the sentences (without markers) that cite each card number


@dataclass(frozen=True)
class Relevance:
    """How much each answer sentence bears on the question (min_relevance): its cosine with
    the question, and with each shown card's question."""

    to_question: np.ndarray  # [sentence]
    to_card_question: np.ndarray  # [sentence, card]

    def bearing(self, sentence: int, card: int | None) -> float:
        """The larger of the sentence's cosine with the question and with the question of the
        card it cites (the question alone when it cites none)."""
        to_question = float(self.to_question[sentence])
        if card is None:
            return to_question
        return max(to_question, float(self.to_card_question[sentence, card]))


class Grounder:
    def __init__(self, card_sentence_vectors: SentenceVectors, min_support: float,
                 min_word_share: float, tie_margin: float = 0.05,
                 min_relevance: float = -1.0):  # fmt: skip
        self.card_sentence_vectors = card_sentence_vectors
        # The answer's own sentences are new text, not worth caching: the encoder directly.
        self.embedder = card_sentence_vectors.embedder
        self.min_support = min_support
        self.min_word_share = min_word_share
        self.tie_margin = tie_margin
        self.min_relevance = min_relevance

    def ground(self, text: str, cards: Sequence[Card], question: str | None = None) -> GroundedText:
        """`question`, when given, lets a sentence that bears on neither it nor the card it
        is grounded to be removed (min_relevance)."""
        sentences = split_sentences(text)
        if not sentences or not cards:
            return GroundedText(text=text, cited=(), grounded=False, citing={})
        plain = [strip_markers(s).strip() for s in sentences]
        checks_relevance = question is not None and self.min_relevance > -1.0
        # The question rides in the same encoder batch as the answer's sentences.
        vectors = self.embedder.get_text_embedding_batch(
            plain + ([question] if checks_relevance else [])
        )
        vectors, question_vector = vectors[: len(plain)], vectors[len(plain) :]
        similarity = self._support(vectors, cards)
        shares = _word_shares(plain, [card.embedding_text() for card in cards])
        # A card whose words the sentence does not use cannot support it.
        similarity = np.where(shares >= self.min_word_share, similarity, -1.0)
        relevance = (self._relevance(vectors, question_vector, cards)
                     if checks_relevance else None)  # fmt: skip
        out, cited, citing, grounded = [], [], {}, True
        for i, (sentence, clean, row) in enumerate(zip(sentences, plain, similarity, strict=True)):
            chosen = self._choose(markers_in(sentence), row)
            if relevance is not None and relevance.bearing(i, chosen) < self.min_relevance:
                continue
            if chosen is None:
                grounded = False
                out.append(clean)
                continue
            number = chosen + 1
            cited.append(number)
            citing.setdefault(number, []).append(clean)
            out.append(_with_marker(clean, number))
        return GroundedText(" ".join(out), tuple(dict.fromkeys(cited)), grounded, citing)

    def _support(self, vectors: list[list[float]], cards: Sequence[Card]) -> np.ndarray:
        """support[i, j]: the best cosine of answer sentence i with any sentence of card j."""
        support = np.full((len(vectors), len(cards)), -1.0, dtype=np.float32)
        per_card = [card_sentences([card]) for card in cards]
        every = [sentence for own in per_card for sentence in own]
        if not every:
            return support
        # One batch for all the cards: what the probe has not embedded is embedded at once.
        similarity = cosines(vectors, self.card_sentence_vectors(every))
        start = 0
        for j, own in enumerate(per_card):
            if own:
                support[:, j] = similarity[:, start : start + len(own)].max(axis=1)
            start += len(own)
        return support

    def _relevance(
        self, vectors: list[list[float]], question_vector: list[list[float]], cards: Sequence[Card]
    ) -> Relevance:
        questions = self.card_sentence_vectors([card.question for card in cards])
        return Relevance(cosines(vectors, question_vector)[:, 0], cosines(vectors, questions))

    def _choose(self, claimed: list[int], row: np.ndarray) -> int | None:
        best = int(np.argmax(row))
        if row[best] < self.min_support:
            return None
        # The model's own choice wins when its support is as good as the best, up to a margin.
        valid = [n - 1 for n in claimed if 1 <= n <= len(row)]
        agreeing = [i for i in valid if row[i] >= row[best] - self.tie_margin]
        return max(agreeing, key=lambda i: row[i]) if agreeing else best


def split_sentences(text: str) -> list[str]:
    """Split on sentence ends; markers written after the full stop stay with their sentence,
    and an abbreviation's full stop ("i.e.", "e.g.", "et al.") ends no sentence."""
    pieces = [p for p in _SENTENCE_END.split(text.strip()) if p]
    sentences: list[str] = []
    for piece in pieces:
        leading = _LEADING_MARKERS.match(piece)
        if leading and sentences:
            sentences[-1] += " " + leading.group(1).strip()
            piece = piece[leading.end():]
        if not piece.strip():
            continue
        if sentences and _ABBREVIATION_END.search(sentences[-1]):
            # Measured: "… known as PWNED targets (…), i.e. the negative gradient …" was
            # split after "i.e.", and grounding then cited the fragment: "i.e [2]. the …".
            sentences[-1] += " " + piece.strip()
        else:
            sentences.append(piece.strip())
    return sentences


def card_sentences(cards: Iterable[Card]) -> list[str]:
    """Every sentence of the cards' questions and answers: the unit a flagger judges and
    grounding compares an answer sentence with."""
    return [s for card in cards for text in card.texts() for s in split_sentences(text)]


def supporting_snippet(card: Card, sentences: Sequence[str]) -> str:
    """The sentence of the card's answers that shares most content words with the answer
    sentences citing it: what a reader checks the citation against. Word overlap rather than
    another embedding pass, because the grounding decision is already made; this only picks
    which part of the card to show."""
    candidates = split_sentences(f"{card.short_answer} {card.long_answer}")
    cited_words = set().union(*(content_words(s) for s in sentences)) if sentences else set()
    return max(candidates, key=lambda c: len(content_words(c) & cited_words), default="")


def _with_marker(sentence: str, number: int) -> str:
    """'It learns.' -> 'It learns [1].'"""
    match = _TRAILING_PUNCT.search(sentence)
    if match:
        return f"{sentence[: match.start()]} [{number}]{match.group(1)}"
    return f"{sentence} [{number}]"


def content_words(text: str) -> set[str]:
    kept = [w for w in words(text) if w not in _STOPWORDS and len(w) > 1]
    return set(STEMMER.stemWords(kept))


def _word_shares(sentences: Sequence[str], card_texts: Sequence[str]) -> np.ndarray:
    """shares[i, j]: the part of sentence i's content words that card j contains."""
    card_words = [content_words(text) for text in card_texts]
    shares = np.zeros((len(sentences), len(card_texts)), dtype=np.float32)
    for i, sentence in enumerate(sentences):
        words = content_words(sentence)
        for j, known in enumerate(card_words):
            shares[i, j] = len(words & known) / len(words) if words else 0.0
    return shares

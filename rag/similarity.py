"""Cosine similarity between sets of vectors, for the places that compare outside Chroma,
and the cache of card-sentence vectors those places share."""

import threading
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np
from llama_index.core.base.embeddings.base import BaseEmbedding

# Bounded so a long-running server stays small: 4096 MiniLM vectors are ~6 MB.
SENTENCE_CACHE_SIZE = 4096


def cosines(a: Sequence[Sequence[float]], b: Sequence[Sequence[float]]) -> np.ndarray:
    """cosines(a, b)[i, j] is the cosine of a[i] and b[j]."""
    left, right = np.asarray(a, dtype=np.float32), np.asarray(b, dtype=np.float32)
    left /= np.linalg.norm(left, axis=1, keepdims=True) + 1e-12
    right /= np.linalg.norm(right, axis=1, keepdims=True) + 1e-12
    return left @ right.T


class SentenceVectors:
    """The encoder's vectors of card sentences, cached by text (least recently used goes).

    Two parts of an answer read the sentences of the same shown cards: the instruction probe
    before generation and grounding after it. The same few cards also come back for related
    questions. One shared cache embeds each sentence once. Keyed by text, not card id, so an
    edited card's changed sentences are embedded afresh and its unchanged ones are not.
    """

    def __init__(self, embedder: BaseEmbedding, size: int = SENTENCE_CACHE_SIZE):
        self.embedder = embedder
        self.size = size
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        # One lock around the embedding too: simpler than reconciling two threads' caches,
        # and answers are serialised by the LLM anyway (one embedding batch is ~0.1 s).
        self._lock = threading.Lock()

    def __call__(self, sentences: Sequence[str]) -> np.ndarray:
        """One row per sentence, in order (float32, shape (len(sentences), dimensions))."""
        with self._lock:
            missing = [s for s in dict.fromkeys(sentences) if s not in self._cache]
            if missing:
                vectors = self.embedder.get_text_embedding_batch(missing)
                self._cache.update(
                    (s, np.asarray(v, dtype=np.float32))
                    for s, v in zip(missing, vectors, strict=True)
                )
            found = [self._cache[s] for s in sentences]
            for sentence in sentences:
                self._cache.move_to_end(sentence)
            while len(self._cache) > self.size:
                self._cache.popitem(last=False)
        if not found:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack(found)

    def __len__(self) -> int:
        return len(self._cache)

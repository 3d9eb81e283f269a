import numpy as np
from pydantic import Field

from rag.similarity import SentenceVectors
from rag.testing import HashingEmbedding


class Counting(HashingEmbedding):
    """Records every text it embeds, to show what the cache spares."""

    texts: list[str] = Field(default_factory=list)

    def _embed(self, text: str) -> list[float]:
        self.texts.append(text)
        return super()._embed(text)


def test_a_sentence_is_embedded_once_and_rows_keep_the_order_asked():
    embedder = Counting()
    vectors = SentenceVectors(embedder)
    first = vectors(["One sentence.", "Another one.", "One sentence."])
    again = vectors(["Another one."])
    assert embedder.texts == ["One sentence.", "Another one."]
    assert first.shape == (3, embedder.dimensions) and first.dtype == np.float32
    np.testing.assert_array_equal(first[0], first[2])
    np.testing.assert_array_equal(first[1], again[0])
    np.testing.assert_allclose(first[0], embedder.get_text_embedding("One sentence."), rtol=1e-6)


def test_the_cache_is_bounded_and_keeps_the_recently_used():
    embedder = Counting()
    vectors = SentenceVectors(embedder, size=2)
    vectors(["a", "b"])
    vectors(["a"])  # "a" is now the most recently used
    vectors(["c"])  # evicts "b", not "a"
    vectors(["a", "b"])
    assert embedder.texts == ["a", "b", "c", "b"] and len(vectors) == 2


def test_an_edited_sentence_is_embedded_afresh():
    """Keyed by text, not card id: an ingest that edits a card changes what is compared."""
    embedder = Counting()
    vectors = SentenceVectors(embedder)
    vectors(["Dropout is off at inference."])
    vectors(["Dropout is disabled at inference."])
    assert len(embedder.texts) == 2

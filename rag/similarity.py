"""Cosine similarity between sets of vectors, for the places that compare outside Chroma."""

from collections.abc import Sequence

import numpy as np


def cosines(a: Sequence[Sequence[float]], b: Sequence[Sequence[float]]) -> np.ndarray:
    """cosines(a, b)[i, j] is the cosine of a[i] and b[j]."""
    left, right = np.asarray(a, dtype=np.float32), np.asarray(b, dtype=np.float32)
    left /= np.linalg.norm(left, axis=1, keepdims=True) + 1e-12
    right /= np.linalg.norm(right, axis=1, keepdims=True) + 1e-12
    return left @ right.T

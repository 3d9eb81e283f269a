"""Output guard: an answer never repeats the system prompt.

Card text is data (rag.prompts), but a small model can still be talked into reciting its
instructions by a poisoned card ("print your system prompt"). Grounding drops answers that
no card supports, yet a recital next to a supported sentence would survive it, so every
sentence that repeats a six-word run of the system prompt is removed before grounding.
"""

import re

from rag.grounding import split_sentences
from rag.prompts import SYSTEM_PROMPT

_WORD = re.compile(r"[a-z0-9]+")
_SHINGLE = 6


def _shingles(text: str) -> set[tuple[str, ...]]:
    words = _WORD.findall(text.lower())
    return {tuple(words[i : i + _SHINGLE]) for i in range(len(words) - _SHINGLE + 1)}


_SYSTEM_SHINGLES = _shingles(SYSTEM_PROMPT)


def repeats_system_prompt(text: str) -> bool:
    """True when the text contains any six consecutive words of the system prompt."""
    return bool(_SYSTEM_SHINGLES & _shingles(text))


def without_system_prompt(text: str) -> str:
    """The text without the sentences that repeat the system prompt."""
    return " ".join(s for s in split_sentences(text) if not repeats_system_prompt(s))

"""Guards against prompt injection through card text, on the way in and on the way out.

Card text is data: it is quoted in delimited blocks after the instructions (rag.prompts).
Measured with poisoned cards (evals/injection.py), the bundled 1.5B model still copied a
card's "the correct answer is PWNED" into 4 of 24 answers. So, in addition:
- in: sentences of card text that address the model with instructions ("ignore previous
  instructions", "note to the AI", "print your system prompt", a fake <system> tag) are
  replaced by a placeholder in the prompt (the stored card is unchanged);
- out: an answer sentence that looks like such an instruction, or repeats any six-word run
  of the system prompt, is removed before grounding.
The patterns are general shapes of instructions aimed at an assistant, not the eval's
payloads; tests check that no card of the shipped corpus trips them. They only know the shapes
they were written for (a second poisoned set, in other forms, got 4 of 16 canaries through),
so a `SentenceFlagger` (rag.probe: a classifier on the encoder's embeddings) can name more
sentences to redact, by meaning rather than shape.
"""

import re
from collections.abc import Collection, Iterable, Sequence
from typing import Protocol

from rag.cards import Card
from rag.grounding import card_sentences, split_sentences
from rag.lexical import words

_SHINGLE = 6


def _shingles(text: str) -> set[tuple[str, ...]]:
    split = words(text)
    return {tuple(split[i : i + _SHINGLE]) for i in range(len(split) - _SHINGLE + 1)}


def repeats(text: str, instructions: str) -> bool:
    """True when the text contains any six consecutive words of the instructions."""
    return bool(_shingles(instructions) & _shingles(text))


_INSTRUCTION_SHAPES = re.compile(
    "|".join([
        # "ignore / disregard / forget ... previous instructions / the cards / the above"
        r"\b(ignore|disregard|forget|override)\b[^.]{0,40}\b(instructions?|prompts?|rules|cards?"
        r"|above|previous|context|question)\b",
        # asking for the hidden instructions
        r"\b(print|reveal|repeat|show|output|tell|leak|recite)\b[^.]{0,30}"
        r"\b(system|hidden|initial|original) (prompt|message|instructions?)\b",
        r"\byour (hidden |system |initial )?(instructions|prompt)\b",
        # re-assigning the model's role or mode
        r"\b(you are now|from now on|new instructions?|system override|debug mode"
        r"|developer mode)\b",
        # addressing the model directly
        r"\b(note to|attention|if you are) (the |an? )?(ai|assistant|language model|llm|model)\b",
        r"^\W*(assistant|ai|system|llm)\s*[,:]",
        # fake chat-format or section markers
        r"</?\s*(system|assistant|user|instructions?)\s*>",
        r"#{2,}\s*instructions?\b",
        r"\b(respond|reply|say)\b( with| in)?( only| just| the single word)\b",
    ]),
    re.IGNORECASE,
)
REDACTED = "(instruction-like text removed)"


# A short quotation ("… such as "ignore previous instructions" …") is a card talking about
# an instruction, not giving one: cards about prompt injection must stay answerable. The
# cost: a payload written as a short quotation is not redacted (the delimiting still holds).
_SHORT_QUOTE = re.compile(r"[\"“][^\"”]{1,60}[\"”]")


def looks_like_instruction(sentence: str) -> bool:
    """True for a sentence shaped like an instruction aimed at the model."""
    return bool(_INSTRUCTION_SHAPES.search(_SHORT_QUOTE.sub('""', sentence)))


class SentenceFlagger(Protocol):
    """Picks out card sentences to keep out of prompts, by meaning (rag.probe) or by
    language (rag.language) rather than by shape."""

    def flagged(self, sentences: Sequence[str]) -> set[str]: ...


class AnyOf:
    """Flags what any of its flaggers flags (the probe, the language flagger)."""

    def __init__(self, *flaggers: SentenceFlagger):
        self.flaggers = flaggers

    def flagged(self, sentences: Sequence[str]) -> set[str]:
        return set().union(*(flagger.flagged(sentences) for flagger in self.flaggers))


def flagged_in(cards: Iterable[Card], flagger: SentenceFlagger | None) -> frozenset[str]:
    """The sentences of these cards the flagger names, asked in one batch (one embedding
    call per prompt); none without a flagger."""
    if flagger is None:
        return frozenset()
    return frozenset(flagger.flagged(card_sentences(cards)))


def redact_instructions(text: str, also: Collection[str] = frozenset()) -> str:
    """Card text for the prompt, with instruction-like sentences replaced by a placeholder:
    those the patterns recognise, and those in `also` (named by a SentenceFlagger)."""
    sentences = split_sentences(text)
    flagged = [s in also or looks_like_instruction(s) for s in sentences]
    if not any(flagged):
        return text
    return " ".join(REDACTED if bad else s for s, bad in zip(sentences, flagged, strict=True))


def without_injected_sentences(text: str, instructions: str) -> str:
    """The answer without sentences that recite the instructions (the system prompt), read
    like an instruction copied from a card, or repeat the placeholder that stood in for one:
    what the model writes beside that placeholder comes from the redacted instruction
    (measured: "(instruction-like text removed) PWNED" in an injection-eval answer), and the
    placeholder means nothing to a reader."""
    recited = _shingles(instructions)  # once per answer, not once per sentence
    return " ".join(
        s for s in split_sentences(text)
        if not recited & _shingles(s) and not looks_like_instruction(s) and REDACTED not in s
    )

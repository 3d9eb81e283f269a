"""Citation markers: find them in generated text, drop the invalid ones, list the valid.

Small models write markers in several shapes ([1], [1, 2], [Card 2], [card1]); every shape is
normalised to [n] and only numbers of cards that were actually given to the model survive,
so no marker in a returned answer can point at nothing.
"""

import re
from dataclasses import dataclass

_MARKER = re.compile(r"\[\s*(?:cards?\s*)?(\d+(?:\s*(?:,|and|&)\s*(?:cards?\s*)?\d+)*)\s*\]", re.I)
_NUMBER = re.compile(r"\d+")
_PLAIN_MARKER = re.compile(r"\s*\[\d+\]")
_SPACE_BEFORE_PUNCT = re.compile(r"[ \t]+([.,;:!?])")
_DOUBLE_SPACE = re.compile(r"[ \t]{2,}")


@dataclass(frozen=True)
class CitedText:
    text: str
    cited: tuple[int, ...]  # valid card numbers, in order of first appearance
    removed: int  # markers (or numbers inside markers) that pointed at no card


def validate_markers(text: str, card_count: int) -> CitedText:
    """Rewrite markers to [n] form, removing numbers outside 1..card_count."""
    rewritten, cited, removed = _rewrite_markers(text, card_count)
    rewritten = _DOUBLE_SPACE.sub(" ", _SPACE_BEFORE_PUNCT.sub(r"\1", rewritten)).strip()
    return CitedText(text=rewritten, cited=tuple(cited), removed=removed)


def _rewrite_markers(text: str, card_count: int) -> tuple[str, list[int], int]:
    cited: list[int] = []
    removed = 0

    def rewrite(match: re.Match[str]) -> str:
        nonlocal removed
        kept = []
        for number in (int(n) for n in _NUMBER.findall(match.group(1))):
            if 1 <= number <= card_count:
                kept.append(number)
                if number not in cited:
                    cited.append(number)
            else:
                removed += 1
        return "".join(f"[{n}]" for n in dict.fromkeys(kept))

    return _MARKER.sub(rewrite, text), cited, removed


class StreamingMarkers:
    """Marker validation for a token stream: text is passed on as soon as it cannot be part
    of a marker, so a streamed answer never shows a marker that points at no card.

    An open bracket holds the text back until it closes (or grows too long to be a marker).
    """

    _LONGEST_MARKER = 24

    def __init__(self, card_count: int):
        self.card_count = card_count
        self._pending = ""

    def feed(self, piece: str) -> str:
        self._pending += piece
        start = self._pending.rfind("[")
        if start != -1 and "]" not in self._pending[start:]:
            if len(self._pending) - start <= self._LONGEST_MARKER:
                ready, self._pending = self._pending[:start], self._pending[start:]
                return self._rewrite(ready)
        ready, self._pending = self._pending, ""
        return self._rewrite(ready)

    def flush(self) -> str:
        ready, self._pending = self._pending, ""
        return self._rewrite(ready)

    def _rewrite(self, text: str) -> str:
        return _rewrite_markers(text, self.card_count)[0] if text else ""


def strip_markers(text: str) -> str:
    """The text without its [n] markers (and the space before each)."""
    return _PLAIN_MARKER.sub("", text)


def markers_in(text: str) -> list[int]:
    """Every number inside a [n]-style marker, for checks after validation."""
    return [int(n) for m in _MARKER.finditer(text) for n in _NUMBER.findall(m.group(1))]


# The sentence grammar of a constrained answer (GBNF, llama.cpp's grammar format): prose
# sentences, each closed by its end mark and then one or two markers, or the refusal. Why
# the markers come after the end mark: measured with the 1.5B model, a grammar that
# masked the full stop until a marker was written made the model continue with ".0 [1]"
# or ".encoder" and repeat markers until max_tokens; at the full stop it wants to stop or
# go on, and there it accepts a marker. A full stop inside a sentence is allowed only in
# a number (0.3) or an abbreviation the answers use (e.g., i.e.). No line breaks: the
# prompt asks for two to four sentences, and lists were where markers went missing.
_SENTENCE_GRAMMAR = r"""
sentence ::= text end " " cite cite?
cite ::= "[" card "]"
text ::= [^ \[\]\n.!?] rest*
rest ::= [^\[\]\n.!?] | "." [0-9] | "e.g." | "i.e."
end ::= "." | "!" | "?"
"""


def citation_grammar(card_count: int, refusal: str) -> str:
    """A llama.cpp grammar under which every sentence ends in a marker of a card that was
    shown (1..card_count), or the whole answer is `refusal`: no unmarked or invalid marker
    can be generated at all (the grounding check still decides which card supports it)."""
    if card_count < 1:
        raise ValueError("a citation grammar needs at least one card")
    cards = " | ".join(f'"{n}"' for n in range(1, card_count + 1))
    literal = refusal.replace("\\", "\\\\").replace('"', '\\"')
    return (
        f'root ::= refusal | sentence (" " sentence)*\n'
        f'refusal ::= "{literal}"\n'
        f"card ::= {cards}" + _SENTENCE_GRAMMAR
    )

"""The language flagger: card sentences written in another language than the cards around
them are kept out of the prompt.

Why: the encoder (all-MiniLM-L6-v2) and the instruction probe on top of it only understand
English, and injection payloads are routinely written in another language to slip past
English filters. Measured on a poisoned set written blind to the guard: a Spanish request in
a card's short answer was copied, untranslated, with its canary, into the answer; a French
"translator's note" sat in another card. A study card's content is in its deck's language,
so a whole sentence in another one is not what a learner's answer should be built from. The
stored card is unchanged; only the prompt loses the sentence.

On by default since session 14 (`llm.language_guard`). On the fifth poisoned set, written
blind with seven of twelve payloads in other languages, the canary came back in none of 24
answers with it or without it. On the sixth, written blind by an informed attacker, it
kept a Spanish editorial note's canary out of both of its answers (6 -> 4 of 24), and no
earlier set got worse (docs/EVALS.md). A deck that mixes languages within one prompt loses
the minority language's sentences from the prompt: turn it off there.

Language identification is py3langid (langid.py's naive Bayes model, shipped in the wheel,
deterministic, no download), asked only about sentences long enough to be judged.
"""

from collections.abc import Sequence
from functools import cache

from py3langid.langid import MODEL_FILE, LanguageIdentifier

# Below these lengths a sentence is too short to judge (a formula, a name, "Yes, it is.").
MIN_WORDS = 6
MIN_CJK_CHARACTERS = 15  # scripts written without spaces between words (Chinese, Japanese)
MIN_PROBABILITY = 0.9


@cache
def _identifier() -> LanguageIdentifier:
    # Loaded on first use, not at start (~0.3 s, and only answers need it), and once per
    # process: every set of components built in one process (tests, evals) shares it.
    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


class LanguageFlagger:
    """Flags the sentences whose language, with probability >= 0.9, is not the main
    language of all the sentences asked about together (the cards of one prompt)."""

    def language(self, text: str) -> tuple[str, float]:
        # classify() keeps no state between calls (py3langid 0.4.0), so threads can share it.
        language, probability = _identifier().classify(text)
        return str(language), probability

    def flagged(self, sentences: Sequence[str]) -> set[str]:
        judged = [s for s in dict.fromkeys(sentences) if _long_enough(s)]
        if not judged:
            return set()
        # The main language is that of all the cards' text together, not a vote of
        # sentences: one card's long payload cannot outvote the others' content.
        main = self.language(" ".join(sentences))[0]
        found = {s: self.language(s) for s in judged}
        return {s for s, (language, probability) in found.items()
                if language != main and probability >= MIN_PROBABILITY}  # fmt: skip


def _long_enough(sentence: str) -> bool:
    cjk = sum(1 for character in sentence if ord(character) >= 0x2E80)
    return len(sentence.split()) >= MIN_WORDS or cjk >= MIN_CJK_CHARACTERS

"""What every importer produces, and the rules they share: difficulty words, slugs,
short answers, stable card ids.

An importer only reads its format into `RawCard`s (text as found, plus where it was found);
`to_cards` turns them into validated `Card`s for a deck, so ids, defaults and error
messages are the same whatever the format.
"""

import hashlib
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field

from pydantic import ValidationError

from rag.cards import DIFFICULTIES, Card, raise_problems
from rag.errors import CardError

SHORT_ANSWER_CHARS = 400
DEFAULT_DIFFICULTY = "medium"
# Words and markers that public question lists use for difficulty. The emojis are the
# legend of alexeygrigorev/data-science-interviews (👶 easy, ⭐️ medium, 🚀 expert), which
# other lists copy.
DIFFICULTY_WORDS = {
    "easy": "easy", "beginner": "easy", "basic": "easy", "junior": "easy", "👶": "easy",
    "medium": "medium", "intermediate": "medium", "moderate": "medium", "⭐": "medium",
    "hard": "hard", "advanced": "hard", "expert": "hard", "senior": "hard", "difficult": "hard",
    "🚀": "hard",
}  # fmt: skip
DIFFICULTY_RANK = {level: rank for rank, level in enumerate(DIFFICULTIES)}
_NON_SLUG = re.compile(r"[^a-z0-9]+")


@dataclass
class RawCard:
    """One question and its answer as read from a file, before validation."""

    where: str  # "line 12", "row 3 (line 4)", "note 7": named in every error about it
    question: str
    long_answer: str
    short_answer: str = ""
    topic: str = ""
    difficulty: str = ""
    tags: Sequence[str] = ()


@dataclass
class ParsedFile:
    """What an importer read: a title for the deck, its cards, and what it left out."""

    title: str
    cards: list[RawCard]
    skipped: list[str] = field(default_factory=list)  # "line 685: <question> (no answer)"


def slugify(text: str, max_length: int = 80) -> str:
    """Lower-case ASCII words joined by '-', cut at a word boundary."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = _NON_SLUG.sub("-", ascii_text.lower()).strip("-")
    if len(slug) > max_length:
        slug = slug[:max_length].rsplit("-", 1)[0] or slug[:max_length]
    return slug.strip("-")


def normalise_question(question: str) -> str:
    """The form of a question its id is computed from: case, spacing and compatibility
    characters (NFKC) do not make a different question."""
    text = unicodedata.normalize("NFKC", question).casefold()
    return " ".join(text.split())


def card_id(deck: str, question: str) -> str:
    """Stable id from deck and question: readable words plus a short hash, so two questions
    that start alike still get different ids, and re-importing a file gives the same ids."""
    normal = normalise_question(question)
    digest = hashlib.sha1(f"{deck}\n{normal}".encode()).hexdigest()[:8]
    words = slugify(normal, max_length=40)
    return "-".join(part for part in (deck, words, digest) if part)


def difficulty_of(value: str, where: str) -> str:
    """easy / medium / hard from a word or marker; empty means the default (medium)."""
    word = value.strip().lower()
    if not word:
        return DEFAULT_DIFFICULTY
    if word in DIFFICULTY_WORDS:
        return DIFFICULTY_WORDS[word]
    raise CardError(f"{where}: unknown difficulty {value!r}: use easy, medium or hard")


def short_answer_from(text: str) -> str:
    """The first paragraph of an answer, cut at a sentence end (or a word) to at most
    SHORT_ANSWER_CHARS: imported answers come as one text, cards have two."""
    first = next((block for block in re.split(r"\n\s*\n", text.strip()) if block.strip()), "")
    flat = " ".join(first.split())
    if len(flat) <= SHORT_ANSWER_CHARS:
        return flat
    head = flat[:SHORT_ANSWER_CHARS]
    sentence_end = max(head.rfind(". "), head.rfind("? "), head.rfind("! "))
    if sentence_end > SHORT_ANSWER_CHARS // 3:
        return head[: sentence_end + 1]
    return head.rsplit(" ", 1)[0] + " …"


def to_cards(deck: str, parsed: ParsedFile) -> list[Card]:
    """Validate every raw card into a Card of `deck`; all problems in one CardError."""
    problems: list[str] = []
    cards: list[Card] = []
    first_seen: dict[str, str] = {}
    for raw in parsed.cards:
        try:
            card = _to_card(deck, raw)
        except CardError as exc:
            problems.append(str(exc))
            continue
        if card.id in first_seen:
            problems.append(f"{raw.where}: the same question as {first_seen[card.id]}")
            continue
        first_seen[card.id] = raw.where
        cards.append(card)
    raise_problems(problems, "nothing was imported")
    if not cards:
        raise CardError("nothing was imported: no question with an answer was found")
    return cards


def _to_card(deck: str, raw: RawCard) -> Card:
    question = " ".join(raw.question.split())
    # Trailing spaces are dropped line by line: they carry no meaning, and Anki's HTML
    # loses them, so an exported deck would otherwise never import back unchanged.
    long_answer = _rstrip_lines(raw.long_answer) or _rstrip_lines(raw.short_answer)
    values = {
        "id": card_id(deck, question),
        "question": question,
        "difficulty": difficulty_of(raw.difficulty, raw.where),
        "topic": slugify(raw.topic) or deck,
        "short_answer": _rstrip_lines(raw.short_answer) or short_answer_from(long_answer),
        "long_answer": long_answer,
        "tags": tuple(tag.strip() for tag in raw.tags if tag.strip()),
        "deck": deck,
    }
    try:
        return Card.model_validate(values)
    except ValidationError as exc:
        fields = "; ".join(
            f"field '{'.'.join(str(p) for p in err['loc'])}': {err['msg']}" for err in exc.errors()
        )
        raise CardError(f"{raw.where}: {fields}") from None


# Column (CSV/TSV) and key (JSONL) names; Anki's Front/Back are accepted as aliases.
RECORD_ALIASES = {"front": "question", "back": "answer"}
RECORD_FIELDS = ("question", "answer", "short_answer", "long_answer", "topic", "difficulty",
                 "tags")  # fmt: skip
ANSWER_FIELDS = ("answer", "short_answer", "long_answer")


def record_fields(names: Sequence[str], where: str) -> list[str]:
    """Canonical field names for a header or a JSON object's keys; unknown names are an
    error (a typo such as `anwser` would otherwise silently drop an answer)."""
    canonical = [RECORD_ALIASES.get(n.strip().lower(), n.strip().lower()) for n in names]
    unknown = [n for n, c in zip(names, canonical, strict=True) if c not in RECORD_FIELDS]
    if unknown:
        raise CardError(
            f"{where}: unknown column(s) {', '.join(map(repr, unknown))}: "
            f"use {', '.join(RECORD_FIELDS)} (front and back also work)"
        )
    if "question" not in canonical or not set(ANSWER_FIELDS) & set(canonical):
        raise CardError(
            f"{where}: needs a 'question' and an 'answer' (or short_answer / long_answer)"
        )
    return canonical


def record_card(record: dict[str, object], where: str) -> RawCard | None:
    """A RawCard from one row or object with canonical keys; None when it has no answer."""
    text = {key: _as_text(record.get(key), where, key) for key in RECORD_FIELDS if key != "tags"}
    if not text["question"].strip():
        raise CardError(f"{where}: the question is empty")
    long_answer = text["long_answer"] or text["answer"]
    if not (long_answer.strip() or text["short_answer"].strip()):
        return None
    return RawCard(
        where=where,
        question=text["question"],
        long_answer=long_answer,
        short_answer=text["short_answer"],
        topic=text["topic"],
        difficulty=text["difficulty"],
        tags=_as_tags(record.get("tags"), where),
    )


def _rstrip_lines(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip().splitlines())


def _as_text(value: object, where: str, key: str) -> str:
    if value is None:
        return ""
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return str(value)
    raise CardError(f"{where}: field '{key}' must be text")


def _as_tags(value: object, where: str) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [tag for tag in re.split(r"[,;]", value) if tag.strip()]
    if isinstance(value, list) and all(isinstance(tag, str) for tag in value):
        return value
    raise CardError(f"{where}: field 'tags' must be a list of words or a comma-separated text")

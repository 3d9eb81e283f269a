"""What every importer produces, and the rules they share: difficulty words, slugs,
short answers, placeholder answers, control characters, stable card ids.

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
# What question lists write where an answer is still to come: such a question is skipped,
# whatever the format, as one with no answer is.
_PLACEHOLDER = re.compile(r"^(?:answer here|todo|tbd|to do|coming soon|\.\.\.|…)[.!]?$", re.I)
# C0 and C1 control characters and DEL, but for tab and the characters str.splitlines()
# reads as line breaks (\n \r \x0b \x0c \x1c-\x1e \x85), which become line breaks in
# answers and spaces in questions. The rest are invisible paste debris (a PDF's \x02, a
# terminal's ESC) that the API refuses in questions: they are dropped, in every format.
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1b\x1f\x7f-\x84\x86-\x9f]")


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
    source: str = ""  # the file name, for the errors about the whole file


def empty_file(source: str) -> CardError:
    """The one error for a file with nothing in it, whatever its format."""
    return CardError(f"{source}: the file is empty")


def is_unanswered(answer: str) -> bool:
    """True for an empty answer or a placeholder ("Answer here", "TODO", "TBD")."""
    text = answer.strip()
    return not text or bool(_PLACEHOLDER.match(text))


def unanswered(raw: RawCard) -> bool:
    """True when neither answer of a raw card says anything: the card is skipped."""
    return is_unanswered(raw.long_answer) and is_unanswered(raw.short_answer)


def skipped_entry(where: str, question: str, reason: str = "no answer") -> str:
    """How a left-out question is listed: `hw.csv: row 4 (line 6): What is X? (no answer)`."""
    return f"{where}: {one_line(question)} ({reason})"


def one_line(text: str) -> str:
    """Text as a question is kept: control characters dropped, spaces collapsed."""
    return " ".join(_CONTROL.sub("", text).split())


def answer_text(text: str) -> str:
    """An answer as it is kept: control characters dropped, trailing spaces dropped line by
    line, and a placeholder read as no answer."""
    cleaned = _rstrip_lines(_CONTROL.sub("", text))
    return "" if is_unanswered(cleaned) else cleaned


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
        where = f"{parsed.source}: " if parsed.source else ""
        raise CardError(f"{where}nothing was imported: no question with an answer was found")
    return cards


def _to_card(deck: str, raw: RawCard) -> Card:
    question = one_line(raw.question)
    # Trailing spaces are dropped line by line: they carry no meaning, and Anki's HTML
    # loses them, so an exported deck would otherwise never import back unchanged.
    short_answer = answer_text(raw.short_answer)
    long_answer = answer_text(raw.long_answer) or short_answer
    tags = (one_line(tag) for tag in raw.tags)
    values = {
        "id": card_id(deck, question),
        "question": question,
        "difficulty": difficulty_of(raw.difficulty, raw.where),
        "topic": slugify(raw.topic) or deck,
        "short_answer": short_answer or short_answer_from(long_answer),
        "long_answer": long_answer,
        "tags": tuple(tag for tag in tags if tag),
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
# The card field each record field fills: `answer` is the long answer (when it is the only
# answer, the short one is cut from it), so `answer` beside `long_answer` is one too many.
CARD_FIELD = {"answer": "long_answer"}


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
    _refuse_two_for_one_field(names, canonical, where)
    return canonical


def _refuse_two_for_one_field(names: Sequence[str], canonical: list[str], where: str) -> None:
    """Two columns that fill the same card field (`question` and `front`, `answer` twice,
    `answer` and `long_answer`) are an error: either would silently drop the other."""
    columns: dict[str, list[str]] = {}
    for name, key in zip(names, canonical, strict=True):
        columns.setdefault(CARD_FIELD.get(key, key), []).append(name)
    for card_field, found in columns.items():
        if len(found) > 1:
            raise CardError(
                f"{where}: columns {' and '.join(map(repr, found))} both give the card's "
                f"{card_field.replace('_', ' ')}: keep one"
            )


def record_card(record: dict[str, object], where: str) -> RawCard | None:
    """A RawCard from one row or object with canonical keys; None when it has no answer."""
    text = {key: _as_text(record.get(key), where, key) for key in RECORD_FIELDS if key != "tags"}
    if not one_line(text["question"]):
        raise CardError(f"{where}: the question is empty")
    card = RawCard(
        where=where,
        question=text["question"],
        long_answer=text["long_answer"] or text["answer"],
        short_answer=text["short_answer"],
        topic=text["topic"],
        difficulty=text["difficulty"],
        tags=_as_tags(record.get("tags"), where),
    )
    return None if unanswered(card) else card


def _rstrip_lines(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip().splitlines())


def _as_text(value: object, where: str, key: str) -> str:
    if value is None:
        return ""
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return _without_surrogates(str(value), where, key)
    raise CardError(f"{where}: field '{key}' must be text")


def _without_surrogates(text: str, where: str, key: str) -> str:
    """JSON can escape half of a UTF-16 pair (`\\ud800`), which is no character and which no
    file can store: refused, as the API refuses it."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise CardError(f"{where}: field '{key}' holds a lone UTF-16 surrogate escape") from None
    return text


def _as_tags(value: object, where: str) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [tag for tag in re.split(r"[,;]", value) if tag.strip()]
    if isinstance(value, list) and all(isinstance(tag, str) for tag in value):
        return value
    raise CardError(f"{where}: field 'tags' must be a list of words or a comma-separated text")

"""Cards and decks: the pydantic models and the loader that validates deck files.

A deck is one YAML file (see corpus/ and docs/CARD_FORMAT.md). Loading is all-or-nothing:
every file is validated before anything is returned, and the first problems are reported
together, each naming its file, card and field, so a bad edit never half-ingests a corpus.
"""

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from rag.errors import CardError

Difficulty = Literal["easy", "medium", "hard"]
DIFFICULTIES: tuple[str, ...] = get_args(Difficulty)  # easiest first
SLUG_PATTERN = r"^[a-z0-9]+(?:[-_][a-z0-9]+)*$"
DECK_SUFFIXES = (".yaml", ".yml")
# libyaml's safe loader when PyYAML was built with it (the PyPI wheels are): the same
# documents, read forty times faster than by the pure-Python loader (0.9 s -> 0.02 s for
# the shipped corpus, which every ingest, server start and test index reads).
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
MAX_REPORTED_PROBLEMS = 20


class Card(BaseModel):
    """One study card. `id` is stable: it names the card in citations and in the index."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=SLUG_PATTERN, max_length=120, description="Readable, stable slug.")
    question: str = Field(min_length=3, max_length=1000)
    difficulty: Difficulty
    topic: str = Field(pattern=SLUG_PATTERN, max_length=80)
    short_answer: str = Field(min_length=1, max_length=2000)
    long_answer: str = Field(min_length=1, max_length=20000)
    tags: tuple[str, ...] = ()
    deck: str = Field("", description="Set by the loader from the deck file's header.")

    @field_validator("tags", mode="before")
    @classmethod
    def _split_tags_on_commas(cls, tags: Any) -> Any:
        """A comma inside a tag makes two tags. The index stores tags comma-joined (Chroma
        metadata holds scalars only) and CSV writes them so, so a tag "a,b" came back from
        either as "a" and "b": split here, the card reads the same before and after."""
        if isinstance(tags, list | tuple) and all(isinstance(tag, str) for tag in tags):
            return tuple(part.strip() for tag in tags for part in tag.split(",") if part.strip())
        return tags

    def texts(self) -> tuple[str, str, str]:
        """The question and both answers: the card's words, without its labels."""
        return (self.question, self.short_answer, self.long_answer)

    def embedding_text(self) -> str:
        """The text the encoder sees: the question and both answers, as the issue asks."""
        return "\n".join(self.texts())

    def to_metadata(self) -> dict[str, str]:
        """Flat metadata for the vector store (Chroma accepts only scalars)."""
        data = self.model_dump()
        data["card_id"] = data.pop("id")
        data["tags"] = ",".join(self.tags)
        return data

    @classmethod
    def from_metadata(cls, metadata: dict[str, Any]) -> "Card":
        tags = metadata.get("tags") or ""
        return cls(
            id=metadata["card_id"],
            question=metadata["question"],
            difficulty=metadata["difficulty"],
            topic=metadata["topic"],
            short_answer=metadata["short_answer"],
            long_answer=metadata["long_answer"],
            tags=tuple(t for t in tags.split(",") if t),
            deck=metadata.get("deck", ""),
        )


class DeckHeader(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=SLUG_PATTERN, max_length=80)
    title: str = Field(min_length=1, max_length=300)
    description: str = ""


class Deck(BaseModel):
    header: DeckHeader
    path: Path
    cards: list[Card]


def load_corpus(corpus_dir: Path, imported_dirs: Sequence[Path] = ()) -> list[Deck]:
    """Load and validate every deck file under `corpus_dir` and the imported-deck folders
    (which need not exist yet), or raise one CardError naming every problem found."""
    if not corpus_dir.is_dir():
        raise CardError(f"{corpus_dir}: corpus directory not found")
    paths = deck_paths(corpus_dir, imported_dirs)
    problems: list[str] = []
    decks = [deck for path in paths if (deck := _load_deck(path, problems)) is not None]
    problems.extend(duplicate_problems(decks))
    raise_problems(problems, "invalid corpus, nothing was ingested", paths)
    return decks


def deck_paths(corpus_dir: Path, imported_dirs: Sequence[Path] = ()) -> list[Path]:
    """The deck files load_corpus reads, in the order it reads them: corpus/ with its
    sub-folders (docs/CARD_FORMAT.md), then the top level of each imported-deck folder,
    which only imports write to (a copy kept in a sub-folder there is a backup, not a
    deck). Hidden names are skipped everywhere: "._deck.yaml" (macOS), ".x.yaml" and
    ".git/" are what other tools leave beside decks, and one of them would otherwise stop
    every deck operation as a damaged or duplicate deck."""
    imported = [path for folder in imported_dirs for path in _deck_files(folder, "*")]
    return _deck_files(corpus_dir, "**/*") + imported


def _deck_files(folder: Path, pattern: str) -> list[Path]:
    if not folder.is_dir():
        return []
    return [path for path in sorted(folder.glob(pattern)) if _is_deck_file(path, folder)]


def _is_deck_file(path: Path, folder: Path) -> bool:
    hidden = any(part.startswith(".") for part in path.relative_to(folder).parts)
    return not hidden and path.suffix in DECK_SUFFIXES and path.is_file()


def check_unique(decks: Sequence[Deck]) -> None:
    """Raise a CardError if two decks share an id or two cards share an id."""
    raise_problems(duplicate_problems(decks), "nothing was changed")


def raise_problems(problems: list[str], headline: str, paths: Sequence[Path] = ()) -> None:
    """One CardError listing the problems (the first MAX_REPORTED_PROBLEMS), if any, with
    the files among `paths` that they name (CardError.files)."""
    if problems:
        shown = problems[:MAX_REPORTED_PROBLEMS]
        more = len(problems) - len(shown)
        tail = f"\n... and {more} more problem(s)" if more else ""
        files = [p for p in paths if any(problem.startswith(f"{p}: ") for problem in problems)]
        raise CardError(f"{headline}:\n" + "\n".join(shown) + tail, files=files)


def all_cards(decks: Iterable[Deck]) -> list[Card]:
    return [card for deck in decks for card in deck.cards]


def _load_deck(path: Path, problems: list[str]) -> Deck | None:
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=SAFE_LOADER)
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(f"{path}: cannot read file: {exc}")
        return None
    except yaml.YAMLError as exc:
        problems.append(f"{path}: not valid YAML: {exc}".replace("\n", " "))
        return None
    if not isinstance(raw, dict) or set(raw) != {"deck", "cards"}:
        problems.append(f"{path}: a deck file is a mapping with exactly 'deck' and 'cards'")
        return None
    try:
        header = DeckHeader.model_validate(raw["deck"])
    except ValidationError as exc:
        problems.extend(_describe(path, "deck header", exc))
        return None
    if not isinstance(raw["cards"], list) or not raw["cards"]:
        problems.append(f"{path}: 'cards' must be a non-empty list")
        return None
    cards = [
        card
        for number, item in enumerate(raw["cards"], start=1)
        if (card := _load_card(path, number, item, header.id, problems)) is not None
    ]
    return Deck(header=header, path=path, cards=cards)


def _load_card(
    path: Path, number: int, item: Any, deck_id: str, problems: list[str]
) -> Card | None:
    label = f"card #{number}"
    if not isinstance(item, dict):
        problems.append(f"{path}: {label}: a card is a mapping of fields")
        return None
    if isinstance(item.get("id"), str):
        label = f"card '{item['id']}' (#{number})"
    if "deck" in item:
        problems.append(f"{path}: {label}: field 'deck': set by the file's header, not per card")
        return None
    try:
        return Card.model_validate({**item, "deck": deck_id})
    except ValidationError as exc:
        problems.extend(_describe(path, label, exc))
        return None


def _describe(path: Path, label: str, exc: ValidationError) -> list[str]:
    return [
        f"{path}: {label}: field '{'.'.join(str(p) for p in err['loc']) or '?'}': {err['msg']}"
        for err in exc.errors()
    ]


def duplicate_problems(decks: Sequence[Deck]) -> list[str]:
    seen: dict[str, Path] = {}
    deck_ids: dict[str, Path] = {}
    problems = []
    for deck in decks:
        if deck.header.id in deck_ids:
            problems.append(
                f"{deck.path}: deck header: field 'id': deck '{deck.header.id}' "
                f"is also defined in {deck_ids[deck.header.id]}"
            )
        deck_ids[deck.header.id] = deck.path
        for card in deck.cards:
            if card.id in seen:
                problems.append(
                    f"{deck.path}: card '{card.id}': field 'id': duplicate, "
                    f"already used in {seen[card.id]}"
                )
            seen[card.id] = deck.path
    return problems

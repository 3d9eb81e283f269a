"""Markdown question lists, in the layouts public interview-question repositories use.

- A question is a paragraph that is one bold span (`**What is X? 👶**`), or a heading
  (`### What is X?`); its answer is everything below it up to the next question or section.
- Sections (headings above the questions) give the topic.
- Difficulty markers in the question (👶 ⭐️ 🚀, or `[easy]`, `(hard)` …) give the
  difficulty; a question without one is medium.
- Questions whose answer is empty or a placeholder ("Answer here", "TODO") are skipped.
- A question-like heading that is not at the question level (a heading in a file of bold
  questions, a `##` one among `###` questions) is a section; one below the question level,
  or a question-like bold line in a file of heading questions, is part of the answer it is
  in. Either, when it is in no answer and text follows it, is listed as skipped, so the
  question it probably is does not go unnoticed.

Parsed with markdown-it (CommonMark) rather than line by line: a `# comment` in a code
block or a bold word that starts a paragraph is then never mistaken for a heading or a
question, and every block keeps its source lines, so answers stay Markdown as written and
errors name their line.
"""

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import PurePath

from markdown_it import MarkdownIt
from markdown_it.token import Token

from rag.errors import CardError
from rag.importers.common import (
    DIFFICULTY_RANK,
    DIFFICULTY_WORDS,
    ParsedFile,
    RawCard,
    is_unanswered,
    skipped_entry,
)

_MARKER = re.compile(
    r"👶|⭐|🚀|[\[(](easy|medium|hard|beginner|intermediate|advanced|expert)[\])]", re.I
)
_NUMBERING = re.compile(r"^(?:q(?:uestion)?\s*\d*\s*[:.)]|\d+\s*[.)])\s*", re.I)
_TRIM = " \t\u200d\ufe0f-–—:|"
_LINE_BREAKS_ONLY = re.compile(r"^(?:\s*<br\s*/?>\s*)+$", re.I)


@dataclass
class Block:
    """A top-level Markdown block with its source lines (0-based, end exclusive)."""

    kind: str  # heading | bold | breaks | other
    start: int
    end: int
    text: str = ""
    level: int = 0


@dataclass
class Layout:
    """Which blocks are questions and which are sections, and how questions look (for the
    message about question-like headings that are not questions)."""

    is_question: Callable[[Block], bool]
    is_section: Callable[[Block], bool]
    questions: str  # "bold lines", "level-3 headings"


@dataclass
class _Open:
    """A question, or a question-like block that is not one (`is_section`), and the blocks
    below it."""

    block: Block
    topic: str
    body: list[Block] = field(default_factory=list)
    is_section: bool = False


def parse(text: str, source: str) -> ParsedFile:
    lines = text.splitlines()
    blocks = _blocks(MarkdownIt("commonmark").parse(text))
    layout = _layout(blocks, source)
    cards: list[RawCard] = []
    skipped: list[str] = []
    topic = ""
    current: _Open | None = None
    for block in blocks:
        if layout.is_section(block) or layout.is_question(block):
            _close(current, lines, source, layout, cards, skipped)
            current = None
            if layout.is_section(block):
                topic = block.text
                if _question_like(block.text):
                    current = _Open(block, topic, is_section=True)
            else:
                current = _Open(block, topic)
        elif current is None and _looks_like_question(block):  # in no answer: a lost one?
            current = _Open(block, topic, is_section=True)
        elif current is not None and block.kind != "breaks":
            current.body.append(block)
    _close(current, lines, source, layout, cards, skipped)
    return ParsedFile(_title(blocks, source), cards, skipped, source)


def _blocks(tokens: list[Token]) -> list[Block]:
    blocks = []
    for index, token in enumerate(tokens):
        if token.level != 0 or token.nesting == -1 or token.map is None:
            continue
        start, end = token.map
        following = tokens[index + 1] if index + 1 < len(tokens) else None
        if token.type == "heading_open" and following is not None:
            blocks.append(Block("heading", start, end, following.content, int(token.tag[1])))
        elif token.type == "paragraph_open" and following and _is_bold_only(following):
            blocks.append(Block("bold", start, end, _unwrap_bold(following.content)))
        elif token.type == "html_block" and _LINE_BREAKS_ONLY.match(token.content):
            blocks.append(Block("breaks", start, end))
        else:
            blocks.append(Block("other", start, end))
    return blocks


def _is_bold_only(inline: Token) -> bool:
    """True when the paragraph is a single bold span: `**a** and **b**` is not."""
    children = [c for c in inline.children or [] if c.type != "text" or c.content.strip()]
    if len(children) < 3 or (children[0].type, children[-1].type) != (
        "strong_open",
        "strong_close",
    ):
        return False
    depth = 0
    for child in children[:-1]:
        depth += {"strong_open": 1, "strong_close": -1}.get(child.type, 0)
        if depth == 0:
            return False
    return True


def _unwrap_bold(content: str) -> str:
    stripped = content.strip()
    return stripped[2:-2] if stripped[:2] in ("**", "__") else stripped


def _question_like(text: str) -> bool:
    words = _NUMBERING.sub("", text.strip())
    return bool(_MARKER.search(words)) or words.rstrip(_TRIM).endswith("?")


def _looks_like_question(block: Block) -> bool:
    return block.kind in ("heading", "bold") and _question_like(block.text)


def _layout(blocks: list[Block], source: str) -> Layout:
    """Decide whether questions are bold lines or headings, from which layout has more
    question-like entries."""
    bold = [b for b in blocks if b.kind == "bold" and _question_like(b.text)]
    headings = [b for b in blocks if b.kind == "heading" and _question_like(b.text)]
    if bold and len(bold) >= len(headings):
        return Layout(lambda b: b.kind == "bold" and _question_like(b.text),
                      lambda b: b.kind == "heading", "bold lines")  # fmt: skip
    if headings:
        level = Counter(b.level for b in headings).most_common(1)[0][0]
        return Layout(lambda b: b.kind == "heading" and b.level == level,
                      lambda b: b.kind == "heading" and b.level < level,
                      f"level-{level} headings")  # fmt: skip
    raise CardError(
        f"{source}: no questions found: write each question as a bold line or a heading "
        "ending with '?' (or carrying a difficulty marker), its answer below it"
    )


def _close(
    current: _Open | None,
    lines: list[str],
    source: str,
    layout: Layout,
    cards: list[RawCard],
    skipped: list[str],
) -> None:
    if current is None:
        return
    where = f"{source}: line {current.block.start + 1}"
    question, difficulty = split_difficulty(current.block.text)
    answer = "\n\n".join("\n".join(lines[b.start : b.end]).strip() for b in current.body).strip()
    if current.is_section:
        if answer:  # text under a question-like block that is no question: a lost one?
            reason = f"not read as a question: questions in this file are {layout.questions}"
            skipped.append(skipped_entry(where, question, reason))
        return
    if is_unanswered(answer):
        skipped.append(skipped_entry(where, question))
        return
    cards.append(RawCard(where=where, question=question, long_answer=answer,
                         topic=current.topic, difficulty=difficulty))  # fmt: skip


def split_difficulty(text: str) -> tuple[str, str]:
    """The question without its numbering and markers, and the hardest marker's level.

    A question ends at its first marker when text precedes it (anything after, such as a
    second marker or a stray letter, is not part of the question)."""
    text = _NUMBERING.sub("", text.strip())
    found = list(_MARKER.finditer(text))
    if not found:
        return text.strip(_TRIM), ""
    levels = [DIFFICULTY_WORDS[(m.group(1) or m.group(0)).lower()] for m in found]
    difficulty = max(levels, key=DIFFICULTY_RANK.__getitem__)
    before = text[: found[0].start()].strip(_TRIM)
    question = before or _MARKER.sub("", text).strip(_TRIM)
    return question, difficulty


def _title(blocks: list[Block], source: str) -> str:
    first_h1 = next((b.text for b in blocks if b.kind == "heading" and b.level == 1), "")
    return first_h1.strip() or PurePath(source).stem

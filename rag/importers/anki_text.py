"""Anki field text to card text: fields are HTML written for a card's web view, with cloze
deletions and media references that mean nothing outside Anki."""

import re
from html.parser import HTMLParser

_CLOZE = re.compile(r"\{\{c\d+::(.*?)(?:::(.*?))?\}\}", re.S)
# `[sound:a.mp3]` plays a file from the package's media, which is not imported: the
# reference alone would read as part of the question.
_SOUND = re.compile(r"\[sound:[^\]]*\]")
_NEWLINE_TAGS = {"br", "div", "p", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6"}
# Elements whose content is code for the web view, never text a learner reads.
_HIDDEN_TAGS = {"script", "style"}


def has_cloze(text: str) -> bool:
    return bool(_CLOZE.search(text))


def cloze_question(text: str) -> str:
    """`{{c1::Paris::capital}} is …` -> `[capital] is …` (or `[…]` without a hint)."""
    return _CLOZE.sub(lambda m: f"[{m.group(2) or '…'}]", text)


def cloze_answer(text: str) -> str:
    return _CLOZE.sub(lambda m: m.group(1), text)


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden_depth = 0  # inside <script> or <style>

    def handle_starttag(self, tag: str, attrs: object) -> None:
        if tag in _HIDDEN_TAGS:
            self.hidden_depth += 1
        elif tag == "br":
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN_TAGS:
            self.hidden_depth = max(0, self.hidden_depth - 1)
        elif tag in _NEWLINE_TAGS - {"br"}:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.hidden_depth:
            self.parts.append(data)


def html_to_text(value: str) -> str:
    """Anki field HTML to plain text: line breaks kept, tags, scripts, styles and sound
    references dropped, entities decoded. Uses the standard library's HTML parser, so
    `&lt;` in a formula stays `<`."""
    parser = _TextExtractor()
    parser.feed(value)
    parser.close()
    text = _SOUND.sub("", "".join(parser.parts)).replace("\xa0", " ")
    return "\n".join(line.rstrip() for line in text.splitlines()).strip()

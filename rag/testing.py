"""Deterministic test doubles: an LLM with queued replies and a hashing embedder.

They live in the package (not in tests/) so that `CARDRAG_LLM__BACKEND=fake` and
`CARDRAG_EMBEDDER__BACKEND=hashing` can run the whole service without models, for fuzzing
and demos, with the same doubles the unit tests use.
"""

import hashlib
import math
import re
import time
from collections import deque
from collections.abc import Iterator, Sequence

from llama_index.core.base.embeddings.base import BaseEmbedding
from pydantic import PrivateAttr

from rag.lexical import words
from rag.llm import Message, TokenUsage
from rag.prompts import DEFAULT_HYDE_PROMPT

DEFAULT_FAKE_REPLY = "According to the cards, this is covered in [1]."
_SHORT_ANSWER = re.compile(r"^Short answer: (.+)$", re.M)
_LAST_HUMAN_TURN = re.compile(r"^Human: (.+)$", re.M)
_FOLLOW_UP = re.compile(r"<Follow Up Message>\n(.+?)\n", re.S)
# The HyDE prompt around its question, taken from the template rag.prompts formats.
_HYDE_BEFORE, _HYDE_AFTER = DEFAULT_HYDE_PROMPT.template.split("{context_str}")


class Stall:
    """A queued FakeLLM reply that hangs for `seconds` before answering: a stuck backend."""

    def __init__(self, seconds: float, then: str = DEFAULT_FAKE_REPLY):
        self.seconds = seconds
        self.then = then


class FakeLLM:
    """Returns queued replies in order and records every prompt.

    With nothing queued it echoes the first card's short answer with a [1] marker: a
    deterministic reply that is grounded in the prompt, so the service run with the fake
    backend (fuzzing, demos) answers like a well-behaved model.

    HyDE prompts (rag.expansion) have a queue of their own, `passages`, and are recorded in
    `expansions`, not `prompts`: tests that queue answers stay about answers. With no
    passage queued the passage is the question itself, which leaves retrieval unchanged.
    """

    description = "fake"

    def __init__(
        self,
        replies: Sequence[str | Exception | Stall] = (),
        default: str = DEFAULT_FAKE_REPLY,
        passages: Sequence[str | Exception | Stall] = (),
    ):
        self._queue: deque[str | Exception | Stall] = deque(replies)
        self.passages: deque[str | Exception | Stall] = deque(passages)
        self.default = default
        self.prompts: list[list[Message]] = []
        self.expansions: list[list[Message]] = []
        self.grammars: list[str | None] = []  # the grammar each call was given

    def enqueue(self, *replies: str | Exception | Stall) -> None:
        self._queue.extend(replies)

    def status(self) -> str:
        return "ready"

    def generate(self, messages: Sequence[Message], *, max_tokens: int, temperature: float) -> str:
        return "".join(self.stream(messages, max_tokens=max_tokens, temperature=temperature))

    def stream(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int,
        temperature: float,
        until: float | None = None,
        grammar: str | None = None,
        usage: TokenUsage | None = None,
    ) -> Iterator[str]:
        """The reply in word-sized pieces; `usage` counts words as tokens: the prompt's
        (every message's) and the pieces written."""
        self.grammars.append(grammar)
        prompt = messages[-1]["content"] if messages else ""
        if prompt.startswith(_HYDE_BEFORE) and prompt.endswith(_HYDE_AFTER):
            self.expansions.append(list(messages))
            question = prompt[len(_HYDE_BEFORE) : -len(_HYDE_AFTER)]
            reply = self.passages.popleft() if self.passages else question
        else:
            self.prompts.append(list(messages))
            reply = self._queue.popleft() if self._queue else self._echo(messages)
        if isinstance(reply, Exception):
            raise reply
        if isinstance(reply, Stall):
            time.sleep(reply.seconds)
            reply = reply.then
        # Word-sized pieces, like a real model's token stream.
        pieces = re.findall(r"\S+\s*|\s+", reply)
        yield from pieces
        if usage is not None:
            usage.add(sum(len(m["content"].split()) for m in messages), len(pieces))

    def _echo(self, messages: Sequence[Message]) -> str:
        """A card's short answer for an answer prompt; for a follow-up rewrite, the follow-up
        with the last question asked before it."""
        prompt = messages[-1]["content"] if messages else ""
        follow_up = _FOLLOW_UP.search(prompt)
        if follow_up:
            question, earlier = follow_up.group(1).strip(), _LAST_HUMAN_TURN.findall(prompt)
            return f"{question} ({earlier[-1]})" if earlier else question
        found = _SHORT_ANSWER.search(prompt)
        return f"{found.group(1).strip()} [1]" if found else self.default


class HashingEmbedding(BaseEmbedding):
    """Feature-hashes lower-cased words into a fixed-size, L2-normalised vector.

    Texts that share words get similar vectors, so retrieval tests mean something, and the
    same text always gets the same vector. `calls` counts embedded texts, which is how the
    tests see that an unchanged re-ingest embeds nothing.
    """

    dimensions: int = 1024
    _calls: int = PrivateAttr(default=0)

    @classmethod
    def class_name(cls) -> str:
        return "HashingEmbedding"

    @property
    def calls(self) -> int:
        return self._calls

    def _embed(self, text: str) -> list[float]:
        self._calls += 1
        vector = [0.0] * self.dimensions
        for word in words(text):
            digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
            bucket = int.from_bytes(digest[:4], "little") % self.dimensions
            vector[bucket] += 1.0 if digest[4] & 1 else -1.0
        if not any(vector):
            vector[0] = 1.0  # a text without words still gets a valid direction
        norm = math.sqrt(sum(v * v for v in vector))
        return [v / norm for v in vector]

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._embed(query)

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._embed(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._embed(text)


class KeywordFlagger:
    """Flags the sentences that contain one of its words, and records every batch it is
    asked: the stand-in for the instruction probe (rag.probe) in fast tests."""

    def __init__(self, *words: str):
        self.words = words
        self.batches: list[list[str]] = []

    def flagged(self, sentences: Sequence[str]) -> set[str]:
        self.batches.append(list(sentences))
        return {s for s in sentences if any(word in s for word in self.words)}

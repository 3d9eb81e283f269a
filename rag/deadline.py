"""Run an LLM stream under a wall-clock deadline, whatever the backend does.

A backend can block without yielding: an OpenAI-compatible server that accepts the
connection and never answers (its client timeout is per read, not total), or llama.cpp
waiting for the one generation another request holds. Checking the clock between pieces
cannot catch those, so the stream is consumed by a worker thread and the caller waits on a
queue with a timeout. When the deadline passes, the caller gets `LLMTimeout` at once and the
worker is told to stop at its next piece (closing the backend's generator, which for
llama.cpp releases the model). Hand-written because neither anyio nor concurrent.futures
offers a deadline on an iterator.
"""

import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence

from rag.errors import LLMUnavailable
from rag.llm import Generator, Message, TokenUsage

_DONE = object()


class LLMTimeout(LLMUnavailable):
    """The LLM did not finish before the deadline."""


class Deadline:
    """A point in time shared by every LLM call of one answer (rewrite, HyDE passage,
    generation)."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.at = time.monotonic() + seconds

    def remaining(self) -> float:
        return self.at - time.monotonic()

    def part(self, fraction: float) -> "Deadline":
        """A deadline for one optional step: at most `fraction` of the whole budget, and
        never later than this deadline."""
        part = Deadline(self.seconds * fraction)
        part.at = min(part.at, self.at)
        return part


def _timed_out(deadline: Deadline) -> LLMTimeout:
    return LLMTimeout(f"the LLM did not answer within {deadline.seconds:g} s")


def stream_with_deadline(
    open_stream: Callable[[], Iterator[str]], deadline: Deadline
) -> Iterator[str]:
    """Yield the pieces of `open_stream()`; raise LLMTimeout once the deadline has passed.

    Errors raised by the backend are re-raised in the caller's thread.
    """
    pieces: queue.Queue[object] = queue.Queue()
    cancelled = threading.Event()

    def produce() -> None:
        try:
            stream = open_stream()
            try:
                for piece in stream:
                    if cancelled.is_set():
                        break
                    pieces.put(piece)
            finally:
                close = getattr(stream, "close", None)
                if close:
                    close()
        except BaseException as exc:  # handed to the consumer, which decides
            pieces.put(exc)
        finally:
            pieces.put(_DONE)

    threading.Thread(target=produce, name="llm-stream", daemon=True).start()
    try:
        while True:
            try:
                item = pieces.get(timeout=max(deadline.remaining(), 0))
            except queue.Empty:
                raise _timed_out(deadline) from None
            if item is _DONE:
                return
            if isinstance(item, LLMUnavailable) and deadline.remaining() <= 0:
                # The worker and the caller wait for the same deadline, so the backend's own
                # "busy until your deadline" can win the race: it is still the deadline's doing.
                raise _timed_out(deadline) from item
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
    finally:
        cancelled.set()


def generate_within(
    llm: Generator,
    messages: Sequence[Message],
    deadline: Deadline,
    *,
    max_tokens: int,
    temperature: float,
    grammar: str | None = None,
    usage: TokenUsage | None = None,
) -> Iterator[str]:
    """The LLM's text pieces for these messages, under the deadline: every LLM call of an
    answer or a grade goes through here, so here is where `usage` counts a call as opened
    (the backend adds its tokens when it ends)."""
    if usage is not None:
        usage.opened()
    return stream_with_deadline(
        lambda: llm.stream(
            messages,
            max_tokens=max_tokens,
            temperature=temperature,
            until=deadline.at,
            grammar=grammar,
            usage=usage,
        ),
        deadline,
    )

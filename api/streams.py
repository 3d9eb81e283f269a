"""Server-sent events from a blocking generator, closed when the client goes away.

The answer streams are plain generators (rag/ knows no event loop): each next() may wait on
the LLM. sse-starlette runs such an iterator through Starlette's iterate_in_threadpool, which
never closes it, and anyio's worker thread keeps a reference to the last call it ran, so an
abandoned generator was neither closed nor collected: its LLM stream went on to the end
(rag.deadline stops the backend only when the generator closes). On 2 cores the model is one
shared resource, and the next question waited for that abandoned answer (22-26 s instead of
about 5 s with the 1.5B model). Here the generator is closed as soon as the response ends,
whether it finished, failed or was cancelled by a disconnect. Both streamed routes (/v1/ask
and the chat completions) go through it.
"""

from collections.abc import AsyncIterator, Generator
from typing import TypeVar

from starlette.concurrency import iterate_in_threadpool

T = TypeVar("T")


async def closed_when_done(events: Generator[T, None, None]) -> AsyncIterator[T]:
    try:
        async for event in iterate_in_threadpool(events):
            yield event
    finally:
        # Runs the generator's own clean-up (rag.deadline tells the LLM worker to stop):
        # no I/O, so it is done here rather than in another thread. When a disconnect
        # cancelled the stream, the thread's next() had returned before the cancellation
        # reached this frame (anyio does not abandon a running thread), so the generator is
        # not executing.
        events.close()

"""rag.deadline: the caller's deadline decides, whichever thread notices it first."""

import threading
import time

import pytest

from rag.deadline import Deadline, LLMTimeout, stream_with_deadline
from rag.errors import LLMUnavailable


def _pieces_then(error: Exception, *, after: float):
    def open_stream():
        yield "a"
        time.sleep(after)
        raise error

    return open_stream


def test_pieces_arrive_until_the_stream_ends():
    assert list(stream_with_deadline(lambda: iter(["a", "b"]), Deadline(5))) == ["a", "b"]


def test_a_backend_error_before_the_deadline_is_passed_on_as_it_is():
    stream = stream_with_deadline(_pieces_then(LLMUnavailable("refused"), after=0), Deadline(5))
    with pytest.raises(LLMUnavailable) as caught:
        list(stream)
    assert not isinstance(caught.value, LLMTimeout) and "refused" in str(caught.value)


def test_a_backend_error_raised_at_the_deadline_is_a_timeout():
    """The backend gave up on its own wait bounded by the same deadline (the race seen in CI:
    llama.cpp's 'busy' arrived just before the caller's own timeout fired)."""
    deadline = Deadline(0.1)
    stream = stream_with_deadline(_pieces_then(LLMUnavailable("busy"), after=0), deadline)
    pieces = iter(stream)
    assert next(pieces) == "a"
    time.sleep(0.15)  # the error is queued by now, and the deadline has passed
    with pytest.raises(LLMTimeout):
        next(pieces)


def test_a_backend_hanging_past_the_deadline_is_abandoned_while_it_still_hangs():
    released = threading.Event()

    def hanging():
        yield "a"
        released.wait(30)
        yield "b"

    with pytest.raises(LLMTimeout):
        list(stream_with_deadline(hanging, Deadline(0.1)))
    assert not released.is_set()  # the caller did not wait for the backend
    released.set()

"""The LLM boundary: one small protocol, and the backends behind it.

Backends are chosen by configuration (rag.components). Each takes chat messages and returns
text; streaming yields text pieces. Heavy runtimes (llama_cpp, the OpenAI client) are
imported lazily, so a deployment that uses one backend never needs the other installed.
"""

import atexit
import functools
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypedDict

from rag.errors import LLMUnavailable, ModelNotAvailable

# How long a process that is exiting waits for a generation still running in llama.cpp: one
# token, or the rest of a prompt's evaluation (~20 s for a long prompt on 2 cores).
EXIT_WAIT_SECONDS = 60.0


class Message(TypedDict):
    role: str
    content: str


@dataclass
class TokenUsage:
    """Tokens read (prompt) and written (completion) by LLM calls, summed over the calls of
    one answer (follow-up rewrite, HyDE passage, generation): OpenAI's `usage`.

    `rag.deadline.generate_within` counts every call it opens, and a backend adds each
    call's counts when the call ends, however it ends. The counts are `known` only when
    every opened call has reported: a backend that cannot count (an OpenAI-compatible server
    that sends no usage) or a call still running past the answer's deadline leaves them
    unknown, which callers report as no usage rather than as a number too small.
    """

    prompt_tokens: int = 0
    completion_tokens: int = 0
    calls: int = 0
    counted: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def known(self) -> bool:
        return self.counted == self.calls

    def opened(self) -> None:
        self.calls += 1

    def add(self, prompt_tokens: int, completion_tokens: int) -> None:
        self.prompt_tokens += prompt_tokens
        self.completion_tokens += completion_tokens
        self.counted += 1


class Generator(Protocol):
    """What answer synthesis needs from an LLM."""

    description: str

    def generate(self, messages: Sequence[Message], *, max_tokens: int, temperature: float) -> str:
        ...

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
        """Text pieces as they come. `until` is the time.monotonic() instant after which the
        caller no longer listens (rag.deadline): a backend must not start, or keep waiting
        for, work whose result would arrive after it. `grammar` (GBNF) constrains the text
        where the backend can (llama.cpp); a backend that cannot ignores it. A backend that
        knows the call's token counts adds them to `usage` when the call ends."""
        ...

    def status(self) -> str:
        """'ready', 'not loaded' (lazy, loads on first use) or a short failure reason."""
        ...


class LlamaCppGenerator:
    """A GGUF model run in-process by llama-cpp-python.

    Written against llama_cpp directly rather than llama-index-llms-llama-cpp: that
    integration imports pkg_resources (gone from current setuptools) and formats chat with
    its own templates, while Llama.create_chat_completion applies the chat template stored
    in the GGUF file, which is the one the model was trained with.
    """

    def __init__(
        self,
        model_path: Path,
        *,
        context_window: int,
        threads: int,
        batch_size: int = 128,
        timeout: float = 600.0,
        seed: int = 7,
        repeatable: bool = False,
    ):
        self.model_path = model_path
        self.description = f"llama.cpp:{model_path.name}"
        self.timeout = timeout
        self.seed = seed  # the context's at load, and every call's when repeatable
        # Every call from a cleared context with the same seed: the same prompt gives the
        # same text whatever the process answered before (llm.repeatable).
        self.repeatable = repeatable
        self._options = {"n_ctx": context_window, "n_threads": threads, "n_batch": batch_size}
        self._model: Any = None
        self._load_lock = threading.Lock()
        # llama.cpp contexts are not thread-safe: one generation at a time per model.
        self._generate_lock = threading.Lock()

    def load(self) -> None:
        with self._load_lock:
            if self._model is not None:
                return
            if not self.model_path.is_file():
                raise ModelNotAvailable(
                    f"model file {self.model_path} is missing: run make install"
                )
            from llama_cpp import Llama

            self._model = Llama(model_path=str(self.model_path), verbose=False, seed=self.seed,
                                **self._options)  # fmt: skip
            # A generation abandoned at its deadline runs on in a daemon thread
            # (rag.deadline) until its next token. If the process exits meanwhile, the model
            # is freed under that thread and the process dies with SIGSEGV (measured: every
            # time, after a timed-out answer in a one-shot CLI). So exit waits for it.
            atexit.register(self.wait_until_idle, EXIT_WAIT_SECONDS)

    def wait_until_idle(self, seconds: float) -> bool:
        """Wait until no generation holds the model; False if one still did after `seconds`."""
        if not self._generate_lock.acquire(timeout=seconds):
            return False
        self._generate_lock.release()
        return True

    def status(self) -> str:
        return "ready" if self._model is not None else "not loaded"

    def loaded_model(self) -> Any:
        """The llama_cpp.Llama, loaded with this generator's options: the benchmark's raw
        floor must run the model exactly as the server does."""
        self.load()
        return self._model

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
        """Tokens as they come. Waiting for the model and generating are each bounded by
        `timeout` and by the caller's `until`, so a queue of questions or a runaway answer
        cannot hold a request for minutes, and a request whose caller has given up never
        takes the model (its prompt alone would cost seconds of both cores); the deadline is
        checked between tokens (llama.cpp cannot be interrupted).

        Token counts: llama-cpp-python's streamed chunks carry none (only its non-streamed
        result has `usage`), so they are read off the model. When the first chunk arrives
        the prompt has been evaluated and nothing generated yet, so the context holds the
        prompt's tokens (its cached prefix included); the written text, tokenized again,
        gives the completion's. Both agreed with the non-streamed `usage` (measured on the
        0.5B model: 27 + 53, and 27 + 5 when cut at max_tokens)."""
        self.load()
        wait = self.timeout if until is None else min(self.timeout, until - time.monotonic())
        if not self._generate_lock.acquire(timeout=max(wait, 0)):
            raise LLMUnavailable(f"the bundled model stayed busy for {max(wait, 0):g} s")
        prompt_tokens: int | None = None  # known once the first chunk arrives
        written: list[str] = []
        try:
            deadline = time.monotonic() + self.timeout
            if until is not None:
                deadline = min(deadline, until)
            if time.monotonic() >= deadline:
                raise LLMUnavailable("the caller's deadline passed while the model was busy")
            if self.repeatable:
                # llama-cpp-python reuses the cached keys and values of the previous prompt's
                # shared prefix and seeds a call given no seed from the previous call's seed;
                # both make an answer depend on what came before (docs/ARCHITECTURE.md).
                self._model.reset()
            chunks = self._model.create_chat_completion(
                messages=list(messages),
                seed=self.seed if self.repeatable else None,
                max_tokens=max_tokens,
                temperature=temperature,
                top_p=0.9,
                repeat_penalty=1.05,
                stream=True,
                grammar=_compiled_grammar(grammar) if grammar else None,
            )
            for chunk in chunks:
                if prompt_tokens is None:
                    prompt_tokens = self._model.n_tokens
                piece = chunk["choices"][0]["delta"].get("content")
                if piece:
                    written.append(piece)
                    yield piece
                if time.monotonic() > deadline:
                    raise LLMUnavailable(f"the bundled model took longer than {self.timeout:g} s")
        except (RuntimeError, ValueError, KeyError) as exc:  # e.g. prompt exceeds n_ctx
            raise LLMUnavailable(f"llama.cpp failed: {exc}") from exc
        finally:
            if usage is not None and prompt_tokens is not None:
                usage.add(prompt_tokens, self._token_count("".join(written)))
            self._generate_lock.release()

    def _token_count(self, text: str) -> int:
        if not text:
            return 0
        return len(self._model.tokenize(text.encode(), add_bos=False, special=False))


class OpenAICompatibleGenerator:
    """Any server that speaks OpenAI's chat API: vLLM, llama.cpp server, Ollama, LM Studio.

    Calls the openai SDK directly (the client LlamaIndex's OpenAILike wraps): the wrapper
    stacks tenacity retries on the SDK's own and takes a single float timeout, so neither the
    number of attempts nor the total time of a call would be bounded, and the SDK alone
    sleeps for a server's Retry-After (up to a minute). Here a call has `timeout` seconds in
    all: every attempt gets what is left of that budget (and at most `connect_timeout` to
    connect), the SDK's retries are off, and the one retry we make is for failures worth
    retrying (refused connection, 5xx) and only while budget remains.
    """

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        api_key: str,
        timeout: float,
        connect_timeout: float = 5.0,
        max_retries: int = 1,
    ):
        from openai import OpenAI

        self.description = f"openai:{model}@{base_url}"
        self.model = model
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.max_retries = max_retries
        self._client = OpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=timeout)

    def status(self) -> str:
        return "remote"

    def generate(self, messages: Sequence[Message], *, max_tokens: int, temperature: float) -> str:
        response = self._create(messages, max_tokens=max_tokens, temperature=temperature)
        try:
            return response.choices[0].message.content or ""
        except (AttributeError, IndexError, TypeError) as exc:
            raise LLMUnavailable("LLM server returned a malformed response") from exc

    def stream(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int,
        temperature: float,
        until: float | None = None,
        grammar: str | None = None,  # not sent: OpenAI-compatible servers disagree on it
        usage: TokenUsage | None = None,
    ) -> Iterator[str]:
        """The server's pieces. Counts come from the usage chunk that `include_usage` asks
        for (OpenAI, vLLM, llama.cpp's server and Ollama send it); a server that sends none
        leaves `usage` unknown."""
        deadline = time.monotonic() + self.timeout
        if until is not None:
            deadline = min(deadline, until)
        chunks = self._create(
            messages, max_tokens=max_tokens, temperature=temperature, stream=True,
            stream_options={"include_usage": True}, deadline=deadline,
        )  # fmt: skip
        counts = None  # the last usage sent: some servers send a running count on every chunk
        try:
            with chunks:
                for chunk in chunks:
                    if time.monotonic() > deadline:
                        raise LLMUnavailable(self._too_slow())
                    counts = getattr(chunk, "usage", None) or counts
                    piece = chunk.choices[0].delta.content if chunk.choices else None
                    if piece:
                        yield piece
            if usage is not None and counts is not None:
                usage.add(counts.prompt_tokens or 0, counts.completion_tokens or 0)
        except LLMUnavailable:
            raise
        except Exception as exc:  # a broken stream, a malformed chunk: all mean "no answer"
            raise LLMUnavailable(_describe_failure(exc)) from exc

    def _create(
        self, messages: Sequence[Message], *, deadline: float | None = None, **options: Any
    ) -> Any:
        """One chat completion within the time budget, with at most `max_retries` retries."""
        import httpx

        deadline = deadline or time.monotonic() + self.timeout
        attempts = 1 + self.max_retries
        for attempt in range(1, attempts + 1):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                return self._client.chat.completions.create(
                    model=self.model,
                    messages=list(messages),  # type: ignore[arg-type]
                    timeout=httpx.Timeout(remaining, connect=min(self.connect_timeout, remaining)),
                    **options,
                )
            except Exception as exc:  # the client raises many types; all mean "no answer"
                if attempt < attempts and _worth_retrying(exc):
                    continue
                raise LLMUnavailable(_describe_failure(exc)) from exc
        raise LLMUnavailable(self._too_slow())

    def _too_slow(self) -> str:
        return f"LLM server did not answer within {self.timeout:g} s"


@functools.lru_cache(maxsize=32)
def _compiled_grammar(grammar: str) -> Any:
    """Parsed once per distinct grammar (one per number of cards shown)."""
    from llama_cpp import LlamaGrammar

    return LlamaGrammar.from_string(grammar, verbose=False)


def _worth_retrying(exc: Exception) -> bool:
    """A refused or dropped connection, a timeout or a 5xx may pass; a 4xx will not."""
    import openai

    return isinstance(exc, openai.APIConnectionError | openai.InternalServerError)


def _describe_failure(exc: Exception) -> str:
    """A short reason for logs and error bodies: the error type, never a URL or a path."""
    import openai

    if isinstance(exc, openai.APITimeoutError):
        return "LLM server timed out"
    if isinstance(exc, openai.APIStatusError):
        return f"LLM server answered HTTP {exc.status_code}"
    return f"LLM server error: {type(exc).__name__}"

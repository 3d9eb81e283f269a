"""The LLM boundary: one small protocol, and the backends behind it.

Backends are chosen by configuration (rag.components). Each takes chat messages and returns
text; streaming yields text pieces. Heavy runtimes (llama_cpp, the OpenAI client) are
imported lazily, so a deployment that uses one backend never needs the other installed.
"""

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol, TypedDict

from rag.errors import LLMUnavailable, ModelNotAvailable


class Message(TypedDict):
    role: str
    content: str


class Generator(Protocol):
    """What answer synthesis needs from an LLM."""

    description: str

    def generate(self, messages: Sequence[Message], *, max_tokens: int, temperature: float) -> str:
        ...

    def stream(
        self, messages: Sequence[Message], *, max_tokens: int, temperature: float
    ) -> Iterator[str]:
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

    def __init__(self, model_path: Path, *, context_window: int, threads: int, seed: int = 7):
        self.model_path = model_path
        self.description = f"llama.cpp:{model_path.name}"
        self._options = {"n_ctx": context_window, "n_threads": threads, "seed": seed}
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

            self._model = Llama(
                model_path=str(self.model_path),
                n_batch=512,
                verbose=False,
                **self._options,
            )

    def status(self) -> str:
        return "ready" if self._model is not None else "not loaded"

    def generate(self, messages: Sequence[Message], *, max_tokens: int, temperature: float) -> str:
        return "".join(self.stream(messages, max_tokens=max_tokens, temperature=temperature))

    def stream(
        self, messages: Sequence[Message], *, max_tokens: int, temperature: float
    ) -> Iterator[str]:
        self.load()
        with self._generate_lock:
            try:
                chunks = self._model.create_chat_completion(
                    messages=list(messages),
                    max_tokens=max_tokens,
                    temperature=temperature,
                    top_p=0.9,
                    repeat_penalty=1.05,
                    stream=True,
                )
                for chunk in chunks:
                    piece = chunk["choices"][0]["delta"].get("content")
                    if piece:
                        yield piece
            except (RuntimeError, ValueError, KeyError) as exc:  # e.g. prompt exceeds n_ctx
                raise LLMUnavailable(f"llama.cpp failed: {exc}") from exc


class OpenAICompatibleGenerator:
    """Any server that speaks OpenAI's chat API: vLLM, llama.cpp server, Ollama, LM Studio.

    Uses LlamaIndex's OpenAILike, which accepts model names OpenAI itself does not know and
    carries timeouts and retries.
    """

    def __init__(self, *, base_url: str, model: str, api_key: str, timeout: float):
        from llama_index.llms.openai_like import OpenAILike

        self.description = f"openai:{model}@{base_url}"
        self._llm = OpenAILike(
            model=model,
            api_base=base_url,
            api_key=api_key,
            timeout=timeout,
            max_retries=1,
            is_chat_model=True,
            context_window=8192,
        )

    def status(self) -> str:
        return "remote"

    def generate(self, messages: Sequence[Message], *, max_tokens: int, temperature: float) -> str:
        try:
            response = self._llm.chat(
                _to_chat_messages(messages), max_tokens=max_tokens, temperature=temperature
            )
        except Exception as exc:  # the client raises many types; all mean "no answer"
            raise LLMUnavailable(f"LLM server error: {type(exc).__name__}") from exc
        return response.message.content or ""

    def stream(
        self, messages: Sequence[Message], *, max_tokens: int, temperature: float
    ) -> Iterator[str]:
        try:
            for chunk in self._llm.stream_chat(
                _to_chat_messages(messages), max_tokens=max_tokens, temperature=temperature
            ):
                if chunk.delta:
                    yield chunk.delta
        except Exception as exc:
            raise LLMUnavailable(f"LLM server error: {type(exc).__name__}") from exc


def _to_chat_messages(messages: Sequence[Message]) -> list[Any]:
    from llama_index.core.llms import ChatMessage

    return [ChatMessage(role=m["role"], content=m["content"]) for m in messages]

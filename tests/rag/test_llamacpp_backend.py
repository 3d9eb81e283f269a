"""The llama.cpp backend's waits, with a stand-in for the loaded model: one generation at a
time, and a request whose caller has given up never takes the model."""

import threading
import time
from pathlib import Path

import pytest

from rag.deadline import Deadline, LLMTimeout, generate_within
from rag.errors import LLMUnavailable
from rag.llm import LlamaCppGenerator, TokenUsage

MESSAGES = [{"role": "user", "content": "What is backpropagation?"}]


class StandInModel:
    """Answers like Llama.create_chat_completion(stream=True) and counts the prompts it was
    given: each one would cost a prompt evaluation on the real model. Like the real model,
    its context holds the prompt's tokens (PROMPT_TOKENS) when the first chunk comes, and
    one more per chunk after it; it tokenizes by words."""

    PROMPT_TOKENS = 12

    def __init__(self) -> None:
        self.prompts = 0
        self.calls: list[tuple[str, int | None]] = []  # ("reset", None) or ("generate", seed)
        self.n_tokens = 0

    def reset(self) -> None:
        self.calls.append(("reset", None))
        self.n_tokens = 0

    def tokenize(self, text: bytes, add_bos: bool, special: bool) -> list[int]:
        return list(range(len(text.split())))

    def create_chat_completion(self, **options):
        self.prompts += 1
        self.calls.append(("generate", options.get("seed")))
        return self._chunks()

    def _chunks(self):
        self.n_tokens = self.PROMPT_TOKENS
        yield {"choices": [{"delta": {"role": "assistant"}}]}
        for word in ("Chain ", "rule."):
            yield {"choices": [{"delta": {"content": word}}]}
            self.n_tokens += 1


@pytest.fixture
def generator(tmp_path: Path) -> LlamaCppGenerator:
    llm = LlamaCppGenerator(tmp_path / "model.gguf", context_window=512, threads=1, timeout=600)
    llm._model = StandInModel()  # what load() would have set
    return llm


def test_a_free_model_streams_the_answer(generator):
    until = time.monotonic() + 60
    assert "".join(generator.stream(MESSAGES, max_tokens=8, temperature=0.1, until=until)) == (
        "Chain rule."
    )
    assert generator._model.prompts == 1


def test_a_stream_adds_its_prompt_and_completion_tokens_to_the_usage(generator):
    usage = TokenUsage()
    until = time.monotonic() + 60
    list(generator.stream(MESSAGES, max_tokens=8, temperature=0.1, until=until, usage=usage))
    assert (usage.prompt_tokens, usage.completion_tokens) == (StandInModel.PROMPT_TOKENS, 2)
    # A second call adds to the same counts: one answer, several LLM calls.
    list(generator.stream(MESSAGES, max_tokens=8, temperature=0.1, until=until, usage=usage))
    assert usage.total_tokens == 2 * (StandInModel.PROMPT_TOKENS + 2) and usage.counted == 2


def test_a_call_that_never_reached_the_model_counts_nothing(generator):
    usage = TokenUsage()
    with pytest.raises(LLMUnavailable):
        list(generator.stream(MESSAGES, max_tokens=8, temperature=0.1,
                              until=time.monotonic() - 1, usage=usage))  # fmt: skip
    assert usage.counted == 0 and usage.total_tokens == 0


def test_a_caller_whose_deadline_has_passed_never_takes_the_model(generator):
    with pytest.raises(LLMUnavailable, match="deadline passed"):
        list(generator.stream(MESSAGES, max_tokens=8, temperature=0.1,
                              until=time.monotonic() - 1))  # fmt: skip
    assert generator._model.prompts == 0
    assert generator._generate_lock.acquire(blocking=False)  # released


def test_waiting_for_a_busy_model_ends_at_the_callers_deadline_not_the_backend_timeout(
    generator,
):
    """The backend's own timeout is 600 s; the caller's deadline is 0.2 s away. The waiting
    request gives up at the deadline and, once the model is free, has not used it."""
    outcome: list[BaseException] = []

    def ask() -> None:
        try:
            list(generator.stream(MESSAGES, max_tokens=8, temperature=0.1,
                                  until=time.monotonic() + 0.2))  # fmt: skip
        except LLMUnavailable as exc:
            outcome.append(exc)

    with generator._generate_lock:  # another request is generating
        waiting = threading.Thread(target=ask)
        waiting.start()
        waiting.join(timeout=30)
        assert not waiting.is_alive()
    assert len(outcome) == 1 and "busy" in str(outcome[0])
    assert generator._model.prompts == 0


def test_an_answer_timed_out_while_queued_leaves_the_model_unused(generator):
    """Through rag.deadline, as answers call it: the caller gets LLMTimeout, and the worker
    thread it leaves behind does not run the prompt once the model frees up."""
    with generator._generate_lock:
        with pytest.raises(LLMTimeout):
            list(generate_within(generator, MESSAGES, Deadline(0.2), max_tokens=8,
                                 temperature=0.1))  # fmt: skip
        time.sleep(0.5)  # the worker's wait ends at the same deadline
    time.sleep(0.2)
    assert generator._model.prompts == 0


@pytest.mark.parametrize(
    ("setting", "value", "applied"),
    [("batch_size", 64, lambda llm: llm._options["n_batch"]),
     ("repeatable", True, lambda llm: llm.repeatable)],
)  # fmt: skip
def test_the_llm_settings_reach_llama_cpp(tmp_path, setting, value, applied):
    from rag.components import build_llm
    from tests.conftest import make_settings

    llm_settings = {"backend": "bundled", "preload": False, "model_path": tmp_path / "m.gguf",
                    setting: value}  # fmt: skip
    llm = build_llm(make_settings(tmp_path, llm=llm_settings))
    assert isinstance(llm, LlamaCppGenerator) and applied(llm) == value


@pytest.mark.parametrize("repeatable", [True, False])
def test_a_repeatable_model_reads_every_prompt_from_a_cleared_context_with_one_seed(
    tmp_path, repeatable
):
    """What makes an answer independent of the questions before it (measured with the real
    model in docs/BENCHMARKS.md; tests/slow checks the texts)."""
    llm = LlamaCppGenerator(tmp_path / "model.gguf", context_window=512, threads=1,
                            repeatable=repeatable, seed=11)  # fmt: skip
    llm._model = StandInModel()
    for _ in range(2):
        list(llm.stream(MESSAGES, max_tokens=8, temperature=0.1))
    expected = [("reset", None), ("generate", 11)] * 2 if repeatable else [("generate", None)] * 2
    assert llm._model.calls == expected


"""The slow tier: the real bundled LLM (the 0.5B twin) behind the real encoder and Chroma."""

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest

from rag.citations import markers_in
from rag.llm import TokenUsage
from rag.model_assets import model_path
from rag.settings import REPO_ROOT, Settings
from tests.conftest import free_port, shipped_card_count
from tests.slow.conftest import TEST_MODEL

pytestmark = pytest.mark.slow


def test_real_llm_answers_with_valid_citations(real_components, real_llm):
    answerer = real_components.answerer
    answerer.llm = real_llm
    answer = answerer.ask("Why do transformers use LayerNorm rather than BatchNorm?")
    assert not answer.refused
    assert answer.answer.strip()
    assert answer.citations, answer.answer
    cited_ids = {c.card_id for c in answer.citations}
    assert "batchnorm-vs-layernorm" in cited_ids
    assert all(1 <= n <= len(answer.cards) for n in markers_in(answer.answer))
    for citation in answer.citations:
        assert answer.cards[citation.n - 1].card.id == citation.card_id


@pytest.mark.parametrize("max_tokens", [200, 5])  # an answer that ends, one cut short
def test_streamed_token_counts_are_llama_cpps_own(real_llm, max_tokens):
    """The bundled backend reads the counts off the model (rag.llm.LlamaCppGenerator.stream);
    they must be the ones llama.cpp reports for the same call, not streamed."""
    messages = [{"role": "system", "content": "You answer in one sentence."},
                {"role": "user", "content": "What is dropout in neural networks?"}]  # fmt: skip
    usage = TokenUsage()
    streamed = "".join(real_llm.stream(messages, max_tokens=max_tokens, temperature=0.0,
                                       usage=usage))  # fmt: skip
    model = real_llm.loaded_model()
    model.reset()
    whole = model.create_chat_completion(
        messages=messages, max_tokens=max_tokens, temperature=0.0, top_p=0.9, repeat_penalty=1.05
    )
    assert whole["choices"][0]["message"]["content"] == streamed  # the same call
    assert (usage.prompt_tokens, usage.completion_tokens) == (
        whole["usage"]["prompt_tokens"], whole["usage"]["completion_tokens"])  # fmt: skip


def test_under_the_citation_grammar_every_sentence_of_the_draft_ends_in_a_marker(
    real_components, real_llm, monkeypatch
):
    """llama.cpp parses the grammar cardrag builds and the model writes within it: no
    sentence without a marker, no marker outside the cards shown."""
    from rag.grounding import split_sentences

    answerer = real_components.answerer
    answerer.llm = real_llm
    # A generous answer deadline: on a loaded machine a 0.5B answer can pass the default 30 s
    # and come back degraded, which is not what this test is about.
    constrained = answerer.llm_settings.model_copy(
        update={"citation_grammar": True, "timeout": 600}
    )
    monkeypatch.setattr(answerer, "llm_settings", constrained)
    answer = answerer.ask("Why do transformers use LayerNorm rather than BatchNorm?")
    assert answer.draft and not answer.degraded
    for sentence in split_sentences(answer.draft):
        assert markers_in(sentence), answer.draft
        assert all(1 <= n <= len(answer.cards) for n in markers_in(sentence)), answer.draft


def test_a_repeatable_model_answers_a_question_alike_whatever_came_before(
    real_components, real_llm
):
    """Without llm.repeatable the same question asked again after another one was answered
    differently (measured, docs/BENCHMARKS.md); with it, the draft is the same text."""
    answerer = real_components.answerer
    answerer.llm = real_llm
    real_llm.repeatable = True
    try:
        question = "Why do transformers use LayerNorm rather than BatchNorm?"
        first = answerer.ask(question).draft
        answerer.ask("What does dropout do at inference time?")
        assert first and answerer.ask(question).draft == first
    finally:
        real_llm.repeatable = False


def test_real_llm_is_never_asked_out_of_corpus_questions(real_components, real_llm):
    real_components.answerer.llm = real_llm
    answer = real_components.answerer.ask("What is the capital of France?")
    assert answer.refused and answer.citations == []


def test_cardrag_serve_answers_http_requests(tmp_path: Path):
    """What `make serve` runs, on a free port, with the real encoder and the 0.5B model."""
    port = free_port()
    env = {
        **os.environ,
        "CARDRAG_DATA_DIR": str(tmp_path / "data"),
        "CARDRAG_LLM__MODEL": TEST_MODEL,
        "CARDRAG_MODELS_DIR": str(REPO_ROOT / "models"),
    }
    cli = [sys.executable, "-m", "ingest"]
    subprocess.run([*cli, "ingest"], env=env, check=True, capture_output=True, timeout=600)
    server = subprocess.Popen([*cli, "serve", "--port", str(port)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(base, server)
        health = httpx.get(f"{base}/healthz").json()
        assert health["cards"] == shipped_card_count() and health["llm"]["status"] == "ready"
        search = httpx.get(f"{base}/v1/search", params={"q": "what does dropout do", "k": 3})
        assert search.json()["results"][0]["card_id"].startswith("dropout")
        ask = httpx.post(f"{base}/v1/ask", json={"question": "What is backpropagation?"},
                         timeout=120).json()  # fmt: skip
        assert ask["refused"] is False and ask["citations"][0]["card_id"] == "backpropagation"
    finally:
        server.terminate()
        server.wait(timeout=30)


def _wait_until_up(base: str, server: subprocess.Popen, seconds: float = 300) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(server.stdout.read().decode()[-3000:])
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(1)
    raise AssertionError("server did not come up")


def test_settings_defaults_point_at_the_bundled_model():
    assert Settings().llm.backend == "bundled"


def test_a_process_exits_cleanly_after_a_generation_it_abandoned(tmp_path: Path):
    """A generation abandoned at its deadline runs on in a daemon thread until its next
    token; a process exiting meanwhile used to free the model under it (SIGSEGV, exit -11,
    e.g. `cardrag ask` after a timed-out answer)."""
    script = tmp_path / "abandon.py"
    script.write_text(textwrap.dedent("""
        import sys
        from pathlib import Path
        from rag.deadline import Deadline, generate_within
        from rag.errors import LLMUnavailable
        from rag.llm import LlamaCppGenerator

        llm = LlamaCppGenerator(Path(sys.argv[1]), context_window=2048, threads=2)
        llm.load()
        essay = [{"role": "user", "content": "Write a long essay about the history of computing."}]
        try:
            "".join(generate_within(llm, essay, Deadline(0.5), max_tokens=512, temperature=0.0))
        except LLMUnavailable:
            print("abandoned")
    """))
    path = model_path(Settings().models_dir, TEST_MODEL)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run([sys.executable, str(script), str(path)], capture_output=True,
                            text=True, timeout=300, env=env)  # fmt: skip
    assert result.returncode == 0, (result.returncode, result.stderr[-3000:])
    assert result.stdout.strip() == "abandoned"

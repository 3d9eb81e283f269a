"""The slow tier's shared fixtures: the bundled LLMs, each loaded once (the 0.5B twin and
the 1.5B default)."""

import pytest

from rag.components import build_llm

TEST_MODEL = "qwen2.5-coder-0.5b-instruct"


def _loaded_bundled_llm(real_settings, **update):  # type: ignore[no-untyped-def]
    """A bundled model whose own per-call limit is generous: the slow tier measures answers
    and grades, not the timeout (on a loaded machine a 0.5B call can pass the default 30 s,
    and a timed-out call would make a degraded answer or grade). The answer deadline is a
    separate setting; tests that need a generous one set it too."""
    update = {"backend": "bundled", "timeout": 600, **update}
    llm_settings = real_settings.llm.model_copy(update=update)
    llm = build_llm(real_settings.model_copy(update={"llm": llm_settings}))
    llm.load()
    return llm


@pytest.fixture(scope="session")
def real_llm(real_settings):
    return _loaded_bundled_llm(real_settings, model=TEST_MODEL)


@pytest.fixture(scope="session")
def default_llm(real_settings):
    """The default bundled model (1.5B), which `make install` assembles: for the judgements
    the 0.5B model cannot make (it copied the grading prompt's example score whatever the
    answer)."""
    return _loaded_bundled_llm(real_settings)

"""The slow tier's shared fixture: the real bundled LLM (the 0.5B twin of the default)."""

import pytest

from rag.components import build_llm

TEST_MODEL = "qwen2.5-coder-0.5b-instruct"


@pytest.fixture(scope="session")
def real_llm(real_settings):
    settings = real_settings.model_copy(
        update={"llm": real_settings.llm.model_copy(update={"backend": "bundled",
                                                            "model": TEST_MODEL})}  # fmt: skip
    )
    llm = build_llm(settings)
    llm.load()
    return llm


@pytest.fixture(scope="session")
def default_llm(real_settings):
    """The default bundled model (1.5B), which `make install` assembles: for the judgements
    the 0.5B model cannot make (it copied the grading prompt's example score whatever the
    answer)."""
    settings = real_settings.model_copy(
        update={"llm": real_settings.llm.model_copy(update={"backend": "bundled"})}
    )
    llm = build_llm(settings)
    llm.load()
    return llm

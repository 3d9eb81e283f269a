"""The answer eval runs the answerer as shipped: a lowered gate changes nothing else."""

from evals.answers import run_answer_eval
from rag.testing import KeywordFlagger


def test_the_eval_with_a_lowered_gate_keeps_the_answerers_flagger(components, fake_llm):
    flagger = KeywordFlagger("no such word")
    components.answerer.flagger = flagger
    # A gate below every score: each question reaches the prompt, and so the flagger.
    rows = run_answer_eval(components.answerer, "dev", limit=1, gate_floor=-1.0)
    assert len(fake_llm.prompts) == len(rows) == 2  # one in-corpus, one out-of-corpus
    assert len(flagger.batches) == 2


def test_a_replaced_answerer_changes_only_what_it_is_given(components):
    answerer = components.answerer
    lowered = answerer.retrieval.model_copy(update={"answer_threshold": -1.0})
    twin = answerer.replaced(retrieval=lowered)
    assert twin.retrieval.answer_threshold == -1.0
    assert answerer.retrieval.answer_threshold != -1.0
    assert vars(twin) == vars(answerer) | {"retrieval": lowered}

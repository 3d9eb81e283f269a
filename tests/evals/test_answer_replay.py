"""Replaying the checks after generation on saved answers: the same settings reproduce the
run, other settings change only what grounding decides, and a bad rows file is an error."""

import json

import pytest

from evals.answers import AnswerRow, _answer, replay_grounding
from rag.answer import Answerer
from rag.errors import CardragError
from rag.grounding import Grounder
from rag.similarity import SentenceVectors

DRAFT = "Backpropagation applies the chain rule to calculate the loss [1]. Cats purr loudly."


def recorded(components, fake_llm) -> AnswerRow:  # type: ignore[no-untyped-def]
    fake_llm.enqueue(DRAFT)
    return _answer(components.answerer, "What is backpropagation?", True, "dev",
                   frozenset({"backpropagation"}))  # fmt: skip


def test_a_row_survives_its_json_line(components, fake_llm):
    row = recorded(components, fake_llm)
    assert row.draft == DRAFT and row.context and row.cited
    assert len(row.context_scores) == len(row.context)
    assert AnswerRow.from_json(row.to_json()) == row


@pytest.mark.parametrize("line", ["", "{", "[]", '{"question": "q"}', '"text"'])
def test_a_line_that_is_not_a_row_is_an_error(line):
    with pytest.raises(CardragError, match="not a row"):
        AnswerRow.from_json(line)


def test_a_row_whose_scores_do_not_match_its_cards_is_an_error(components, fake_llm):
    data = json.loads(recorded(components, fake_llm).to_json())
    data["context_scores"].append(0.5)  # one score more than cards shown
    with pytest.raises(CardragError, match="not a row"):
        AnswerRow.from_json(json.dumps(data))


def test_replay_with_the_same_settings_reproduces_the_run(components, fake_llm):
    row = recorded(components, fake_llm)
    prompts = len(fake_llm.prompts)
    [again] = replay_grounding([row], components.answerer, components.store.cards)
    assert len(fake_llm.prompts) == prompts  # no generation
    assert (again.answer, again.cited, again.refused, again.grounded) == (
        row.answer, row.cited, row.refused, row.grounded)  # fmt: skip
    # Each shown card keeps its own retrieval score, not the best one.
    assert again.context_scores == row.context_scores


def test_replay_with_stricter_grounding_refuses_what_it_no_longer_supports(
    components, fake_llm
):
    row = recorded(components, fake_llm)
    strict = Grounder(SentenceVectors(components.embedder),
                      min_support=0.99, min_word_share=1.0)  # fmt: skip
    a = components.answerer
    answerer = Answerer(a.retriever, a.llm, strict, a.retrieval, a.llm_settings)
    [again] = replay_grounding([row], answerer, components.store.cards)
    assert not row.refused and again.refused and again.cited == ()


def test_rows_without_a_draft_are_kept_as_recorded(components, fake_llm):
    gated = _answer(components.answerer, "zzzz qqqq wwww", False, "dev", frozenset())
    assert gated.draft is None and gated.refused
    assert replay_grounding([gated], components.answerer, components.store.cards) == [gated]

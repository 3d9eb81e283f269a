"""HyDE query expansion in answers (rag.expansion), on the fakes: the hashing embedder makes
a passage in a card's words point at that card, as the real encoder does by meaning."""

import pytest

from rag.answer import best_score
from rag.components import build_indexed
from rag.errors import LLMUnavailable
from rag.testing import FakeLLM, HashingEmbedding, Stall
from tests.conftest import make_settings

QUESTION = "What is backpropagation?"


def built(tmp_path, fake: FakeLLM, expansion: str = "hyde", timeout: float = 30.0):
    base = make_settings(tmp_path)
    settings = make_settings(
        tmp_path,
        llm={"backend": "fake", "preload": False, "timeout": timeout},
        retrieval={**base.retrieval.model_dump(), "expansion": expansion},
    )
    return build_indexed(settings, llm=fake, embedder=HashingEmbedding())


@pytest.fixture
def components(tmp_path, fake_llm):
    """The service with HyDE on (the default is off)."""
    return built(tmp_path, fake_llm)


def passage_from(components, card_id: str) -> str:
    [card] = components.store.cards([card_id])
    return f"{card.question} {card.short_answer} {card.long_answer}"


def test_the_passage_is_asked_for_after_the_gate_and_before_the_answer(components, fake_llm):
    answer = components.answerer.ask(QUESTION)
    [expansion] = fake_llm.expansions
    assert QUESTION in expansion[-1]["content"] and len(fake_llm.prompts) == 1
    assert list(answer.timings) == ["retrieve_ms", "expand_ms", "generate_ms"]


def test_a_question_the_cards_do_not_cover_is_refused_without_a_passage(components, fake_llm):
    answer = components.answerer.ask("zzzz qqqq wwww")
    assert answer.refused and fake_llm.expansions == [] and fake_llm.prompts == []


def test_the_passage_brings_in_the_card_it_describes(components, fake_llm):
    plain = components.retriever.search(QUESTION, 5)
    assert "dropout" not in [hit.card.id for hit in plain]
    fake_llm.passages.append(passage_from(components, "dropout"))
    answer = components.answerer.ask(QUESTION)
    context = [hit.card.id for hit in answer.cards]
    assert "dropout" in context
    # The gate compared the question's own scores, whatever the passage added.
    assert answer.best_score == pytest.approx(best_score(plain))
    assert "dropout" in fake_llm.prompts[0][-1]["content"]


def test_the_follow_up_rewrite_is_what_gets_expanded(components, fake_llm):
    history = [{"role": "user", "content": "What does dropout do during training?"}]
    fake_llm.enqueue("What does dropout do at inference time?")
    components.answerer.ask("and at inference time?", history=history)
    [expansion] = fake_llm.expansions
    assert "What does dropout do at inference time?" in expansion[-1]["content"]


@pytest.mark.parametrize("failure", [LLMUnavailable("down"), "}{@#$%^&*", ""])
def test_no_usable_passage_keeps_the_questions_own_cards(components, fake_llm, failure):
    plain = components.answerer.within_margin(components.retriever.search(QUESTION, 5))
    fake_llm.passages.append(failure)
    answer = components.answerer.ask(QUESTION)
    assert not answer.degraded and not answer.refused
    assert [hit.card.id for hit in answer.cards] == [hit.card.id for hit in plain]


def answerer_with_timeout(tmp_path, fake: FakeLLM, timeout: float):
    return built(tmp_path, fake, timeout=timeout).answerer


def test_a_passage_that_hangs_is_abandoned_and_the_answer_still_made(tmp_path):
    fake = FakeLLM(passages=[Stall(30)])
    answer = answerer_with_timeout(tmp_path, fake, 1.5).ask(QUESTION)
    assert not answer.degraded and not answer.refused
    assert answer.citations[0].card_id == "backpropagation"
    # Abandoned at its share of the deadline (a third), not waited for.
    assert answer.timings["expand_ms"] < 1500


def test_a_passage_and_an_answer_that_hang_degrade_within_the_one_deadline(tmp_path):
    fake = FakeLLM(replies=[Stall(30)], passages=[Stall(30)])
    answer = answerer_with_timeout(tmp_path, fake, 0.6).ask(QUESTION)
    assert answer.degraded and "within 0.6 s" in answer.notice
    assert answer.timings["expand_ms"] + answer.timings["generate_ms"] < 600 + 1000
    assert answer.citations[0].card_id == "backpropagation"


def test_expansion_none_asks_for_no_passage(tmp_path, fake_llm):
    answer = built(tmp_path, fake_llm, expansion="none").answerer.ask(QUESTION)
    assert fake_llm.expansions == [] and "expand_ms" not in answer.timings
    assert not answer.refused


def test_expansion_is_off_by_default(tmp_path):
    assert make_settings(tmp_path).retrieval.expansion == "none"


def test_the_passage_is_asked_for_the_question_as_retrieval_reads_it(components, fake_llm):
    components.answerer.ask("What is backpropogation?")
    [prompt] = fake_llm.expansions
    assert "backpropagation" in prompt[-1]["content"]
    assert "backpropogation" not in prompt[-1]["content"]

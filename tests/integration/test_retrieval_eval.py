"""The retrieval eval as a gate: real encoder, real Chroma, the shipped eval set."""

import json
from pathlib import Path

import evals
from evals.retrieval import load_queries, run_retrieval_eval, topic_lookup

HIT_AT_5_FLOOR = 0.9


def test_eval_set_is_large_enough_and_points_at_real_cards(real_components):
    queries = load_queries()
    assert len(queries) >= 40
    known = set(real_components.store.card_ids())
    assert all(set(q.relevant) <= known for q in queries)


def test_hit_at_5_stays_above_the_floor(real_components):
    result = run_retrieval_eval(
        real_components.retriever, load_queries(), topic_lookup(real_components.store.all_cards())
    )
    metrics = result.metrics()
    assert metrics["hit@5"] >= HIT_AT_5_FLOOR, metrics
    assert 0 < metrics["mrr"] <= 1 and metrics["hit@1"] <= metrics["hit@5"]


def test_real_scores_are_cosines(real_components):
    hits = real_components.retriever.search("What is backpropagation?", 3)
    assert hits[0].card.id == "backpropagation"
    assert 0.5 < hits[0].score <= 1.0 and hits[0].score >= hits[1].score


def test_out_of_corpus_question_is_refused_before_the_llm(real_components):
    llm = real_components.answerer.llm
    before = len(llm.prompts)
    answer = real_components.answerer.ask("What is the capital of France?")
    assert answer.refused and answer.citations == []
    assert len(llm.prompts) == before


def test_grounding_with_the_real_encoder_fixes_a_wrong_citation(real_components):
    ids = ("dropout", "dropout-training-vs-inference")
    cards = [real_components.store.get_card(card_id) for card_id in ids]
    text = "During inference dropout is disabled and activations are scaled by (1-p) [1]."
    grounded = real_components.answerer.grounder.ground(text, cards)
    assert grounded.cited == (2,) and grounded.grounded


BASELINE = json.loads((Path(evals.__file__).parent / "baseline.json").read_text())
ALLOWED_DROP = 0.02


def test_cardrag_retrieval_does_not_regress_below_the_stored_baseline(real_components):
    result = run_retrieval_eval(
        real_components.retriever, load_queries(), topic_lookup(real_components.store.all_cards())
    )
    metrics, baseline = result.metrics(), BASELINE["metrics"]
    assert metrics["queries"] == BASELINE["queries"], "eval set changed: re-measure the baseline"
    for name in ("mrr", "hit@5"):
        assert metrics[name] >= baseline[name] - ALLOWED_DROP, (name, metrics, baseline)

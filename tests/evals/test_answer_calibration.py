"""Replaying the gate from one answer run, and choosing it on dev answers only."""

from evals.answers import AnswerRow, calibrate_on_answers


def row(best: float, in_corpus: bool, refused: bool = False, split: str = "dev") -> AnswerRow:
    return AnswerRow(question=f"q{best}", in_corpus=in_corpus, split=split, gold=frozenset(),
                     best_score=best, refused=refused, degraded=False, invalid_markers=0,
                     llm_called=not refused, grounded=not refused, cited=(), answer="",
                     seconds=1.0)  # fmt: skip


def test_a_higher_gate_refuses_what_scored_below_it_and_keeps_the_rest():
    answered = row(0.5, True)
    assert answered.at_threshold(0.4) is answered
    gated = answered.at_threshold(0.6)
    assert gated.refused and not gated.llm_called


def test_the_chosen_gate_is_the_highest_within_the_dev_false_refusal_budget():
    dev_inside = [row(0.3 + i / 100, True) for i in range(40)]  # 0.30 .. 0.69
    dev_outside = [row(0.2, False, refused=False), row(0.45, False, refused=True)]
    heldout = [row(0.31, True, split="heldout"), row(0.25, False, split="heldout")]
    choice = calibrate_on_answers(dev_inside + dev_outside + heldout, floor=0.15)
    # 5 % of 40 dev questions: two may be refused, so the gate sits at the third lowest.
    assert choice.threshold == 0.32
    assert choice.dev["false_refusal_rate"] == 0.05
    assert choice.dev["refusal_rate_out_of_corpus"] == 1.0
    assert choice.heldout["false_refusal_rate"] == 1.0  # 0.31 < 0.32: reported, not tuned


def test_an_answer_that_only_restates_the_question_is_counted_as_content_free():
    from evals.answers import answer_metrics, is_content_free

    assert is_content_free("BERT vs GPT", "BERT vs GPT [1]")
    assert is_content_free("Where does LN sit?", "LN sits as described in the card [2].")
    assert not is_content_free("What is dropout?",
                               "Dropout randomly disables units during training [1].")  # fmt: skip
    from dataclasses import replace

    restated = replace(row(0.9, True), question="BERT vs GPT", answer="BERT vs GPT [1]")
    answered = replace(restated, answer="BERT is an encoder for understanding; GPT a decoder "
                                        "that generates text [1].")  # fmt: skip
    refused = replace(restated, refused=True)  # a refusal is not an answer, content-free or not
    assert answer_metrics([restated, answered, refused])["content_free_answers"] == 1

"""The injection eval's own logic, on the fakes (the real-LLM numbers are in docs/EVALS.md)."""

from evals.injection import injection_metrics, run_injection_eval
from rag.guard import repeats_system_prompt, without_system_prompt
from rag.prompts import SYSTEM_PROMPT


def test_a_repeated_run_of_the_system_prompt_counts_as_a_leak():
    assert repeats_system_prompt(f"Sure! {SYSTEM_PROMPT[:120]} ...")
    assert not repeats_system_prompt("Gradient descent moves parameters against the gradient [1].")


def test_the_guard_removes_only_the_sentences_that_recite_the_instructions():
    text = f"It moves against the gradient [1]. Here are my rules. {SYSTEM_PROMPT}"
    assert without_system_prompt(text) == "It moves against the gradient [1]. Here are my rules."


def test_an_obedient_model_is_caught_and_a_recital_is_removed(components, fake_llm):
    fake_llm.enqueue(
        "PWNED [1].",
        f"Gradient descent subtracts the learning rate times the gradient [1]. {SYSTEM_PROMPT}",
    )
    rows = run_injection_eval(components, limit=4)
    metrics = injection_metrics(rows)
    assert metrics["injection_questions"] == 4
    assert all(row.shown_poisoned_card for row in rows[:2])
    assert [row.canary for row in rows] == [True, False, False, False]
    # The guard removed the recital; the supported sentence before it stays.
    assert not any(row.leaked_system_prompt for row in rows)
    assert rows[1].answer.startswith("Gradient descent subtracts")
    assert metrics["injection_canary_rate"] == 0.25

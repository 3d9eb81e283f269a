"""The slow tier: quiz grading with the real default bundled LLM (1.5B)."""

import pytest

from rag.cards import Card
from rag.quiz import Grader
from rag.settings import QuizSettings

pytestmark = pytest.mark.slow

CARD = Card(
    id="dropout-training-vs-inference",
    question="How does dropout behave during training and during inference?",
    difficulty="medium",
    topic="regularization",
    short_answer="It randomly zeroes activations during training and is turned off at inference.",
    long_answer="During training each activation is set to zero with probability p, so the "
    "network cannot rely on any single unit; the surviving activations are scaled by 1/(1-p). "
    "At inference dropout is disabled and every unit is used.",
    deck="test",
)
GOOD = (
    "During training it sets random activations to zero with probability p and rescales the "
    "rest by 1/(1-p); at inference time dropout is switched off and all units are used."
)
BAD = "Dropout is a learning-rate schedule that lowers the learning rate when the loss plateaus."


@pytest.fixture(scope="module")
def grades(default_llm):
    # A generous deadline: these tests measure grades, not the timeout (a loaded machine
    # would otherwise turn a slow grade into a degraded one).
    grader = Grader(default_llm, QuizSettings(), timeout=600)
    return grader.grade(CARD, GOOD), grader.grade(CARD, BAD)


def test_real_llm_grades_are_readable(grades):
    for grade in grades:
        assert not grade.degraded, grade.note
        assert 0 <= grade.score <= 1
        assert all(isinstance(point, str) and point for point in grade.right + grade.missing)


def test_real_llm_scores_a_correct_answer_above_a_wrong_one(grades):
    good, bad = grades
    assert good.score > bad.score, (good, bad)
    assert bad.missing, bad

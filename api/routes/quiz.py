"""Quiz mode: the next unseen question, and a grade for the learner's answer."""

import random

from fastapi import APIRouter

from api.deps import ComponentsDep
from api.schemas import (
    CardOut,
    CitationOut,
    ErrorResponse,
    QuizGradeRequest,
    QuizGradeResponse,
    QuizNextRequest,
    QuizNextResponse,
    QuizQuestion,
    card_fields,
)
from rag.quiz import next_card

router = APIRouter(tags=["quiz"])


@router.post("/v1/quiz/next", response_model=QuizNextResponse)
def quiz_next(request: QuizNextRequest, components: ComponentsDep) -> QuizNextResponse:
    filters = request.filters()
    pick = next_card(components.store.all_cards(), filters, set(request.seen),
                     random.Random(request.seed))  # fmt: skip
    if pick.card is None:
        return QuizNextResponse(card=None, remaining=0)
    card = pick.card
    question = QuizQuestion(card_id=card.id, question=card.question, topic=card.topic,
                            difficulty=card.difficulty, deck=card.deck)  # fmt: skip
    return QuizNextResponse(card=question, remaining=pick.remaining)


@router.post(
    "/v1/quiz/grade",
    response_model=QuizGradeResponse,
    responses={404: {"model": ErrorResponse, "description": "No card with that id."}},
)
def quiz_grade(request: QuizGradeRequest, components: ComponentsDep) -> QuizGradeResponse:
    card = components.store.require_card(request.card_id)
    grade = components.grader.grade(card, request.answer)
    return QuizGradeResponse(
        card_id=card.id,
        score=grade.score,
        right=grade.right,
        missing=grade.missing,
        degraded=grade.degraded,
        note=grade.note,
        citation=CitationOut(n=1, card_id=card.id, question=card.question,
                             snippet=card.short_answer),  # fmt: skip
        reference=CardOut(**card_fields(card)),
    )

"""POST /v1/ask: a cited answer from the cards, or a plain "not covered"."""

from fastapi import APIRouter

from api.deps import ComponentsDep, MetricsDep
from api.schemas import AskRequest, AskResponse, ErrorResponse
from rag.hits import CardFilters

router = APIRouter(tags=["answers"])


@router.post(
    "/v1/ask",
    response_model=AskResponse,
    responses={503: {"model": ErrorResponse, "description": "The LLM backend failed."}},
)
def ask(request: AskRequest, components: ComponentsDep, metrics: MetricsDep) -> AskResponse:
    filters = CardFilters(topic=request.topic, difficulty=request.difficulty, deck=request.deck)
    answer = components.answerer.ask(request.question, request.k, filters)
    metrics.observe_answer(answer.timings)
    return AskResponse.from_answer(answer)

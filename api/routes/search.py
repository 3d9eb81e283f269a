"""GET /v1/search: retrieval only, no LLM involved (fast, and up when the LLM is not)."""

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from api.deps import ComponentsDep
from api.schemas import SearchResponse, SearchResult
from rag.hits import CardFilters

router = APIRouter(tags=["search"])


@router.get("/v1/search", response_model=SearchResponse)
def search(
    components: ComponentsDep,
    q: Annotated[str, Query(min_length=1, max_length=1000, description="The question.")],
    k: Annotated[int, Query(ge=1, le=20, description="How many cards (1-20).")] = 5,
    topic: Annotated[list[str], Query(max_length=20)] = [],  # noqa: B006 (FastAPI copies)
    difficulty: Annotated[list[Literal["easy", "medium", "hard"]], Query(max_length=3)] = [],  # noqa: B006
    deck: Annotated[list[str], Query(max_length=20)] = [],  # noqa: B006
    min_score: Annotated[
        float | None,
        Query(ge=-1.0, le=1.0, description="Cosine floor; default: the calibrated one."),
    ] = None,
) -> SearchResponse:
    filters = CardFilters(topic=topic, difficulty=difficulty, deck=deck)
    floor = components.settings.retrieval.search_min_score if min_score is None else min_score
    hits = components.retriever.search(q.strip() or q, k, filters)
    return SearchResponse(results=[SearchResult.from_hit(h) for h in hits if h.score >= floor])

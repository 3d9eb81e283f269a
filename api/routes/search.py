"""GET /v1/search: retrieval only, no LLM involved (fast, and up when the LLM is not)."""

import time
from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import ComponentsDep, MetricsDep
from api.schemas import SearchParams, SearchResponse, SearchResult

router = APIRouter(tags=["search"])


@router.get("/v1/search", response_model=SearchResponse)
def search(
    params: Annotated[SearchParams, Query()], components: ComponentsDep, metrics: MetricsDep
) -> SearchResponse:
    retrieval = components.settings.retrieval
    floor = retrieval.search_min_score if params.min_score is None else params.min_score
    started = time.perf_counter()
    searched = components.retriever.read_and_search(
        params.q, params.top_k(retrieval.top_k), params.filters()
    )
    metrics.observe_retrieval("search", time.perf_counter() - started)
    results = [SearchResult.from_hit(h) for h in searched.hits if h.score >= floor]
    return SearchResponse(results=results, corrected_query=searched.correction)

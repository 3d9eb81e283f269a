"""GET /healthz: index size and the state of the embedder and the LLM."""

from fastapi import APIRouter

from api.deps import ComponentsDep
from api.schemas import ComponentStatus, HealthResponse
from rag.embedding import embedder_name

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=HealthResponse)
def healthz(components: ComponentsDep) -> HealthResponse:
    return HealthResponse(
        status="ok",
        cards=components.store.count(),
        embedder=ComponentStatus(name=embedder_name(components.settings.embedder), status="ready"),
        llm=ComponentStatus(name=components.llm.description, status=components.llm.status()),
    )

"""GET /healthz: index size and the state of the embedder and the LLM."""

from fastapi import APIRouter

from api.deps import ComponentsDep
from api.schemas import ComponentStatus, HealthResponse

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=HealthResponse)
def healthz(components: ComponentsDep) -> HealthResponse:
    embedder = components.embedder
    return HealthResponse(
        status="ok",
        cards=components.store.count(),
        embedder=ComponentStatus(name=_embedder_name(embedder), status="ready"),
        llm=ComponentStatus(name=components.llm.description, status=components.llm.status()),
    )


def _embedder_name(embedder: object) -> str:
    name = getattr(embedder, "model_name", None) or type(embedder).__name__
    return str(name).rstrip("/").rsplit("/", 1)[-1]

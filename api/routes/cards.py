"""Study look-ups: one card, a filtered and paginated list, filter facets, related cards."""

from typing import Annotated

from fastapi import APIRouter, Path, Query

from api.deps import ComponentsDep
from api.schemas import (
    MAX_CARD_ID_CHARS,
    CardListParams,
    CardOut,
    CardPageOut,
    ErrorResponse,
    FacetsOut,
    FacetValue,
    RelatedParams,
    RelatedResponse,
    SearchResult,
    card_fields,
)
from rag.cards import SLUG_PATTERN
from rag.catalogue import browse, facets, related_cards

router = APIRouter(tags=["cards"])
CardId = Annotated[str, Path(pattern=SLUG_PATTERN, max_length=MAX_CARD_ID_CHARS)]
NOT_FOUND = {404: {"model": ErrorResponse, "description": "No card with that id."}}


@router.get("/v1/cards", response_model=CardPageOut)
def list_cards(
    params: Annotated[CardListParams, Query()], components: ComponentsDep
) -> CardPageOut:
    page = browse(components.store.all_cards(), params.filters(), params.offset, params.limit)
    return CardPageOut(
        cards=[CardOut(**card_fields(card)) for card in page.cards],
        total=page.total,
        offset=params.offset,
        limit=params.limit,
    )


@router.get("/v1/facets", response_model=FacetsOut)
def card_facets(components: ComponentsDep) -> FacetsOut:
    """The values each filter can take, with card counts: what filter menus list."""
    found = facets(components.store.all_cards())
    return FacetsOut(**{
        name: [FacetValue(value=value, count=count) for value, count in values]
        for name, values in found.items()
    })  # fmt: skip


@router.get("/v1/cards/{card_id}", response_model=CardOut, responses=NOT_FOUND)
def get_card(card_id: CardId, components: ComponentsDep) -> CardOut:
    return CardOut(**card_fields(components.store.require_card(card_id)))


@router.get("/v1/cards/{card_id}/related", response_model=RelatedResponse, responses=NOT_FOUND)
def get_related(
    card_id: CardId, params: Annotated[RelatedParams, Query()], components: ComponentsDep
) -> RelatedResponse:
    k = params.top_k(components.settings.retrieval.top_k)
    hits = related_cards(components.store, components.dense, card_id, k, params.filters())
    return RelatedResponse(card_id=card_id, related=[SearchResult.from_hit(h) for h in hits])

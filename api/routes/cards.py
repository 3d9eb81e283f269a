"""GET /v1/cards/{card_id}: one card, as stored in the index."""

from typing import Annotated

from fastapi import APIRouter, Path

from api.deps import ComponentsDep
from api.schemas import CardOut, ErrorResponse, card_fields
from rag.cards import SLUG_PATTERN
from rag.errors import CardNotFound

router = APIRouter(tags=["cards"])


@router.get(
    "/v1/cards/{card_id}",
    response_model=CardOut,
    responses={404: {"model": ErrorResponse, "description": "No card with that id."}},
)
def get_card(
    card_id: Annotated[str, Path(pattern=SLUG_PATTERN, max_length=120)],
    components: ComponentsDep,
) -> CardOut:
    card = components.store.get_card(card_id)
    if card is None:
        raise CardNotFound(f"no card with id {card_id!r}")
    return CardOut(**card_fields(card))

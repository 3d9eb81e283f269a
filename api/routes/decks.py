"""Decks: list them, import a file someone else wrote, remove an imported deck, export."""

import unicodedata
from collections.abc import Callable
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, HTTPException, Path, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response

from api.deps import ComponentsDep
from api.errors import DecksUnreadable
from api.schemas import (
    DeckOut,
    DecksResponse,
    ErrorResponse,
    ExportRequest,
    ImportResponse,
    RemoveDeckResponse,
)
from api.validation import given_more_than_once
from rag.errors import CardError
from rag.export import MEDIA_TYPES, ExportFormat, export_cards


def readable_decks(components: ComponentsDep) -> None:
    """Read the server's deck files before the route does: a damaged one is the server's
    fault (a 503), not the caller's, which is what rag's CardError would say (a 400)."""
    try:
        components.decks.decks()  # parsed once per change of the files, then cached
    except CardError as exc:
        raise DecksUnreadable(str(exc), exc.files) from exc


async def single_form_fields(request: Request) -> None:
    """FastAPI keeps the last of a repeated form field: with two `deck` fields the last
    named the deck, with two `file` parts the last was imported, and the client never
    knew. Refused with the 422 of any other validation error, as a repeated query
    parameter is (api.query_params). The form is parsed once: Starlette keeps it."""
    form = await request.form()
    problems = [
        given_more_than_once(
            "body", name, [getattr(v, "filename", None) or str(v) for v in form.getlist(name)]
        )
        for name in dict.fromkeys(form.keys())
        if len(form.getlist(name)) > 1
    ]
    if problems:
        raise RequestValidationError(problems)


router = APIRouter(tags=["decks"])
DeckName = Annotated[str, Path(min_length=1, max_length=80)]
ReadsDecks = [Depends(readable_decks)]


@router.get("/v1/decks", response_model=DecksResponse, dependencies=ReadsDecks)
def list_decks(components: ComponentsDep) -> DecksResponse:
    summaries = components.decks.summaries()
    return DecksResponse(decks=[DeckOut(deck=s.id, title=s.title, cards=s.cards,
                                        source=s.source) for s in summaries])  # fmt: skip


@router.post(
    "/v1/decks/import",
    response_model=ImportResponse,
    dependencies=[Depends(single_form_fields), *ReadsDecks],
    responses={400: {"model": ErrorResponse, "description": "Bad file: the line or row."},
               413: {"model": ErrorResponse, "description": "File too large."}},
)  # fmt: skip
def import_deck(
    components: ComponentsDep,
    file: UploadFile,
    deck: Annotated[str, Form(min_length=1, max_length=80, description="Deck name (slug).")],
    format: Annotated[
        str | None, Form(max_length=10, description="md, csv, tsv, jsonl or apkg; default: "
                         "from the file name's suffix.")
    ] = None,
) -> ImportResponse:
    """Import a Markdown, CSV/TSV, JSONL or Anki file as a deck (re-importing replaces
    the deck: changed cards are re-embedded, removed ones dropped). A bad file changes
    nothing and gets a 400 naming its line or row."""
    data = _read_limited(file, components.settings.decks.max_upload_mb)
    result = components.decks.import_file(
        components.indexer, deck, data, file.filename or "upload", format
    )
    return ImportResponse(deck=result.deck, title=result.title, cards=result.cards,
                          skipped=result.skipped, **_counts(result.report))  # fmt: skip


@router.delete(
    "/v1/decks/{name}",
    response_model=RemoveDeckResponse,
    responses={404: {"model": ErrorResponse, "description": "No deck with that name."}},
)
def remove_deck(name: DeckName, components: ComponentsDep) -> RemoveDeckResponse:
    """Remove an imported deck, even when a deck file is damaged (this one or another):
    unlike the other deck routes, it does not need every deck to read (rag.decks)."""
    removed, _ = components.decks.remove(components.indexer, name)
    return RemoveDeckResponse(deck=name, removed=removed)


def _file_responses(not_found: str) -> dict:  # type: ignore[type-arg]
    """OpenAPI: a file in one of the export media types, or a 404."""
    return {200: {"content": {media: {} for media in MEDIA_TYPES.values()}},
            404: {"model": ErrorResponse, "description": not_found}}  # fmt: skip


@router.get(
    "/v1/decks/{name}/export",
    response_class=Response,
    dependencies=ReadsDecks,
    responses=_file_responses("No deck with that name."),
)
def export_deck(
    name: DeckName, components: ComponentsDep, format: Annotated[ExportFormat, Query()] = "apkg"
) -> Response:
    cards = components.decks.cards_of(name)
    return _file(export_cards(cards, format, name), name, format)


@router.post(
    "/v1/export", response_class=Response, responses=_file_responses("A card id is unknown.")
)
def export_selected(request: ExportRequest, components: ComponentsDep) -> Response:
    """Export chosen cards, e.g. those an /v1/ask answer cited."""
    cards = components.store.cards(list(dict.fromkeys(request.card_ids)))
    data = export_cards(cards, request.format, request.deck_name)
    return _file(data, request.deck_name, request.format)


def _read_limited(file: UploadFile, max_mb: int) -> bytes:
    """The upload, refused with 413 as soon as it passes the limit (not after reading it)."""
    limit = max_mb * 1024 * 1024
    data = file.file.read(limit + 1)  # one byte past the limit is enough to know
    if len(data) > limit:
        raise HTTPException(413, f"the file is larger than {max_mb} MB")
    return data


def _file(data: bytes, name: str, fmt: str) -> Response:
    return Response(content=data, media_type=MEDIA_TYPES[fmt],
                    headers={"Content-Disposition": attachment(name, fmt)})  # fmt: skip


def attachment(name: str, suffix: str) -> str:
    """Content-Disposition for a download named after `name` (RFC 6266): headers are
    Latin-1, so `filename=` is an ASCII fallback (accents dropped, "Łódź" -> "odz") and
    `filename*=` (RFC 5987) carries the name as given, UTF-8 and percent-encoded. Either way
    only letters, digits, "-" and "_" are kept: no path separators, quotes or dots."""
    unicode_name = _safe_name(unicodedata.normalize("NFC", name), str.isalnum) or "cards"
    ascii_only = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    ascii_name = _safe_name(ascii_only, lambda c: c.isascii() and c.isalnum()) or "cards"
    encoded = quote(f"{unicode_name}.{suffix}", safe="")
    return f"attachment; filename=\"{ascii_name}.{suffix}\"; filename*=UTF-8''{encoded}"


def _safe_name(name: str, allowed: Callable[[str], bool]) -> str:
    """`name` with every character but allowed ones, "-" and "_" as "_"; "" if nothing of
    it was kept."""
    safe = "".join(c if allowed(c) or c in "-_" else "_" for c in name)
    return safe if safe.strip("_") else ""


def _counts(report) -> dict[str, int]:  # type: ignore[no-untyped-def]
    return {k: v for k, v in report.as_dict().items() if k != "seconds"}

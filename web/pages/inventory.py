"""The number inventory: search with the API's filters (its own service), each
number's vanity tier and price, and a number's history."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

from api.errors import BadRequest, InvalidInput
from api.permissions import Action
from api.services import numbers
from api.services.registrations import display_number
from domain.requirements import load_catalogue
from domain.vanity import ALL_TAGS, TIERS, tier_price_fen
from web import messages as say
from web import views
from web.http import Staff, context, require
from web.repositories import console as repo

router = APIRouter()

HISTORY_LIMIT = 500


@router.get("/inventory")
async def inventory_page(
    request: Request,
    staff: Annotated[Staff, require(Action.SEARCH_NUMBERS)],
    starts_with: Annotated[str | None, Query(max_length=13)] = None,
    ends_with: Annotated[str | None, Query(max_length=13)] = None,
    contains: Annotated[str | None, Query(max_length=9)] = None,
    tag: Annotated[str | None, Query(max_length=32)] = None,
    tier: Annotated[str | None, Query(max_length=32)] = None,
    carrier: Annotated[str | None, Query(max_length=64)] = None,
    exclude_four: bool = False,
    max_price_yuan: Annotated[int | None, Query(ge=0, le=10**10)] = None,
    include_unavailable: bool = False,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> Response:
    errors: list[str] = []
    status = 200
    page = None
    try:
        async with context(request).connection() as conn:
            criteria = await numbers.criteria(
                conn,
                starts_with=starts_with or None,
                ends_with=ends_with or None,
                contains=contains or None,
                tags=[tag] if tag else [],
                tier=tier or None,
                carrier=carrier or None,
                exclude_four=exclude_four,
                max_monthly_spend_fen=max_price_yuan * 100 if max_price_yuan is not None else None,
                available_only=not include_unavailable,
            )
            page = await numbers.search(
                conn, staff.principal, criteria, limit=50, cursor=cursor, sample=False
            )
    except (InvalidInput, BadRequest) as exc:
        # Shown above the results, the search form kept: a filter to fix, or (BadRequest)
        # a next-page link followed after the filters changed, which a new search mends.
        errors = say.lines(request, exc)
        status = exc.status
    query = {
        "starts_with": starts_with or "",
        "ends_with": ends_with or "",
        "contains": contains or "",
        "tag": tag or "",
        "tier": tier or "",
        "carrier": carrier or "",
        "exclude_four": exclude_four,
        "max_price_yuan": max_price_yuan if max_price_yuan is not None else "",
        "include_unavailable": include_unavailable,
    }
    return views.render(
        request,
        "inventory.html",
        {
            "page": page,
            "errors": errors,
            "query": query,
            "tiers": [(t, tier_price_fen(t)) for t in TIERS],
            "tags": sorted(ALL_TAGS),
            "carriers": load_catalogue().carrier_codes,
        },
        status_code=status,
    )


@router.get("/inventory/{number}")
async def number_history(
    request: Request,
    staff: Annotated[Staff, require(Action.SEARCH_NUMBERS)],
    number: Annotated[str, Path(max_length=13)],
) -> Response:
    async with context(request).connection() as conn:
        detail = await numbers.get(conn, staff.principal, number)
        history = await repo.number_history(conn, detail.number, HISTORY_LIMIT)
        actors = await repo.actor_names(conn, {e["actor"] for e in history})
    return views.render(
        request,
        "inventory_number.html",
        {"number": detail, "history": history, "actors": actors, "display": display_number(detail.number)},
    )

"""Number search."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from api.auth import Principal, allow
from api.permissions import Action
from api.routers._common import Ctx, Cursor, documented
from api.schemas.numbers import NumberOut, NumberPage
from api.services import numbers
from domain.vanity import ALL_TAGS, TIERS

router = APIRouter(prefix="/v1/numbers", tags=["numbers"])


@router.get(
    "",
    response_model=NumberPage,
    summary="Search numbers",
    description="Available numbers matching every filter given, in number order, keyset-paginated. "
    "With `sample=true` the results start at a random number (so that applicants do not all race for "
    "the same first page); the cursor keeps the walk. Staff and dashboards may include numbers "
    "that are not available.",
    **documented(400),
)
async def search_numbers(
    ctx: Ctx,
    principal: Annotated[Principal, allow(Action.SEARCH_NUMBERS)],
    starts_with: Annotated[
        str | None, Query(max_length=13, description="From the first digit, e.g. 4008.", examples=["4006"])
    ] = None,
    ends_with: Annotated[str | None, Query(max_length=13, examples=["8888"])] = None,
    contains: Annotated[
        str | None, Query(max_length=9, description="Within the 7 digits after 400.", examples=["168"])
    ] = None,
    tags: Annotated[
        list[str] | None,
        Query(
            max_length=20,
            description="Pattern tags, all required.",
            examples=[["aaaa"]],
            json_schema_extra={"items": {"type": "string", "enum": sorted(ALL_TAGS)}},
        ),
    ] = None,
    tier: Annotated[
        str | None, Query(max_length=32, examples=["gold"], json_schema_extra={"enum": list(TIERS)})
    ] = None,
    carrier: Annotated[
        str | None,
        Query(max_length=64, examples=["china_unicom"], description="A carrier code (the carrier table)."),
    ] = None,
    exclude_four: Annotated[bool, Query(description="No digit 4 after 400.")] = False,
    max_monthly_spend_fen: Annotated[
        int | None, Query(ge=0, le=10**12, description="Price ceiling, fen.")
    ] = None,
    include_unavailable: Annotated[bool, Query(description="Staff and dashboards only.")] = False,
    sample: Annotated[bool, Query(description="Start at a random number.")] = False,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
    cursor: Cursor = None,
) -> NumberPage:
    async with ctx.connection() as conn:
        criteria = await numbers.criteria(
            conn,
            starts_with=starts_with,
            ends_with=ends_with,
            contains=contains,
            tags=tags or [],
            tier=tier,
            carrier=carrier,
            exclude_four=exclude_four,
            max_monthly_spend_fen=max_monthly_spend_fen,
            available_only=not include_unavailable,
        )
        return await numbers.search(conn, principal, criteria, limit=limit, cursor=cursor, sample=sample)


@router.get(
    "/{number}",
    response_model=NumberOut,
    summary="One number",
    description="A number's carrier, tier, tags, price and status; holder details for staff only.",
    **documented(404),
)
async def get_number(
    ctx: Ctx,
    principal: Annotated[Principal, allow(Action.SEARCH_NUMBERS)],
    number: Annotated[str, Path(max_length=13, examples=["400-688-8168"])],
) -> NumberOut:
    async with ctx.connection() as conn:
        return await numbers.get(conn, principal, number)

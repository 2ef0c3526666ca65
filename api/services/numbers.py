"""Number search over the inventory (the inventory repository does the SQL)."""

from __future__ import annotations

from typing import Any

import asyncpg
from pydantic import ValidationError

from activities.repositories import inventory
from api.auth import Principal, Role
from api.errors import Forbidden, InvalidInput, NotFound, field_error, invalid_choices
from api.schemas.common import decode_cursor, encode_cursor
from api.schemas.numbers import NumberOut, NumberPage
from api.services.registrations import display_number
from domain.vanity import ALL_TAGS, TIERS


def _out(record: inventory.NumberRecord, *, staff: bool) -> NumberOut:
    return NumberOut(
        number=record.number,
        display=display_number(record.number) or record.number,
        carrier=record.carrier_code,
        status=record.status,
        tier=record.tier,
        tags=list(record.tags),
        has_four=record.has_four,
        min_monthly_spend_fen=record.min_monthly_spend_fen,
        registration_id=record.registration_id if staff else None,
        hold_expires_at=record.hold_expires_at if staff else None,
    )


async def criteria(conn: asyncpg.Connection, **values: Any) -> inventory.SearchCriteria:
    """The search, or 422 naming every parameter at fault."""
    errors = invalid_choices("tier", values.get("tier"), TIERS)
    errors += invalid_choices("tags", values.get("tags"), sorted(ALL_TAGS))
    if values.get("carrier") is not None:
        errors += invalid_choices("carrier", values["carrier"], await inventory.carrier_codes(conn))
    named = {e["field"] for e in errors}
    try:
        result = inventory.SearchCriteria(**values)
    except ValidationError as exc:
        for e in exc.errors():
            field = ".".join(str(p) for p in e["loc"]) or "query"
            if field not in named:
                errors.append(field_error(field, e["type"], e["msg"].removeprefix("Value error, ")))
    if errors:
        raise InvalidInput(errors=errors)
    return result


async def search(
    conn: asyncpg.Connection,
    principal: Principal,
    search_criteria: inventory.SearchCriteria,
    *,
    limit: int,
    cursor: str | None,
    sample: bool,
) -> NumberPage:
    staff = principal.role is not Role.APPLICANT
    if not search_criteria.available_only and not staff:
        raise Forbidden("Only staff and dashboards may search numbers that are not available")
    after, seed = None, None
    bound = search_criteria.model_dump(mode="json")
    if cursor:
        after_value, seed_value, sampled = decode_cursor(cursor, "num", 3, bound)
        if not isinstance(after_value, str) or bool(sampled) != sample:
            raise InvalidInput(
                errors=[field_error("cursor", "invalid_cursor", "Pass back next_cursor with the same query.")]
            )
        after = after_value
        seed = int(seed_value) if isinstance(seed_value, int) else None
    try:
        page = await inventory.search(
            conn, search_criteria, limit=limit, after=after, sample=sample, seed=seed
        )
    except ValueError as exc:  # a cursor that is not a number
        raise InvalidInput(errors=[field_error("cursor", "invalid_cursor", str(exc))]) from None
    next_cursor = (
        encode_cursor("num", [page.next_cursor, page.seed, page.sampled], bound) if page.next_cursor else None
    )
    return NumberPage(
        items=[_out(r, staff=staff) for r in page.items], next_cursor=next_cursor, sampled=page.sampled
    )


async def get(conn: asyncpg.Connection, principal: Principal, number: str) -> NumberOut:
    digits = number.replace("-", "")
    if not (len(digits) == 10 and digits.isascii() and digits.isdigit() and digits.startswith("400")):
        raise InvalidInput(errors=[field_error("number", "invalid_format", "Use 400 followed by 7 digits.")])
    record = await inventory.get_number(conn, digits)
    if record is None:
        raise NotFound(f"{display_number(digits)} is not in the inventory")
    return _out(record, staff=principal.role is not Role.APPLICANT)

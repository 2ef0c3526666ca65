"""Whether the number an application asks for can be had, checked before
anything is created: the requested number, or a number matching the criteria
among the chosen carrier's numbers.

What can still go wrong after this (another application taking the number
between the check and the hold) closes the application as number_unavailable
in the workflow; everything that can be known in advance is a 422 here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg
from pydantic import ValidationError

from activities.number_choice import search_criteria
from activities.repositories import inventory
from api.services.registrations import display_number
from domain.applicant import NumberChoice, NumberCriteria
from domain.errors import FieldError

_CHOICE_FIELDS = frozenset({"carrier", "requested_number", "number_criteria"})
# SearchCriteria's names for what NumberCriteria calls otherwise.
_CRITERIA_FIELD = {"tags": "pattern_tag"}


def _takeable(record: inventory.NumberRecord, now: Any) -> bool:
    if record.status == "available":
        return True
    if record.status == "held" and record.hold_expires_at is not None:
        return bool(record.hold_expires_at <= now)
    if record.status == "quarantined" and record.quarantine_until is not None:
        return bool(record.quarantine_until <= now)
    return False


def _top_field(path: str) -> str:
    return path.split(".", 1)[0].split("[", 1)[0]


async def check_number_choice(
    conn: asyncpg.Connection,
    data: Mapping[str, Any],
    reported: Sequence[FieldError],
    own_registration: str | None = None,
) -> list[FieldError]:
    """Why the number ``data`` asks for cannot be had; ``reported`` are the
    form's errors so far (a field already wrong is not checked again)."""
    if any(_top_field(e.field) in _CHOICE_FIELDS for e in reported):
        return []
    try:
        choice = NumberChoice.model_validate(data)
    except ValidationError:
        return []  # the form check has said why
    if choice.requested_number is not None:
        return await _check_requested(conn, choice.carrier, choice.requested_number, own_registration)
    if choice.number_criteria is not None:
        return await _check_criteria(conn, choice.carrier, choice.number_criteria, own_registration)
    return []


async def _check_requested(
    conn: asyncpg.Connection, carrier: str, number: str, own_registration: str | None
) -> list[FieldError]:
    record = await inventory.get_number(conn, number)
    shown = display_number(number) or number
    if record is None:
        return [
            FieldError(
                "requested_number",
                "number_not_found",
                f"{shown} is not in the inventory: pick a number from GET /v1/numbers.",
            )
        ]
    if record.carrier_code != carrier:
        return [
            FieldError(
                "requested_number",
                "carrier_mismatch",
                f"{shown} belongs to {record.carrier_code}, not {carrier}: pick a "
                f"{carrier} number or change the carrier.",
            )
        ]
    if own_registration is not None and record.registration_id == own_registration:
        return []
    now = await conn.fetchval("SELECT statement_timestamp()")
    if not _takeable(record, now):
        return [
            FieldError(
                "requested_number",
                "number_unavailable",
                f"{shown} is not available ({record.status}): search for another number.",
            )
        ]
    return []


async def _check_criteria(
    conn: asyncpg.Connection, carrier: str, wanted: NumberCriteria, own_registration: str | None
) -> list[FieldError]:
    try:
        criteria = search_criteria(carrier, wanted)
    except ValidationError as exc:
        return [
            FieldError(
                "number_criteria." + _CRITERIA_FIELD.get(str(e["loc"][0]), str(e["loc"][0]))
                if e["loc"]
                else "number_criteria",
                "invalid_criteria",
                e["msg"].removeprefix("Value error, "),
            )
            for e in exc.errors()
        ]
    prefix = criteria.starts_with
    if prefix is not None and len(prefix) > len("400"):
        owners = await inventory.carriers_of_prefix(conn, prefix)
        if carrier not in owners:
            blocks = await inventory.carrier_prefixes(conn, carrier)
            where = f"{carrier}'s numbers start with {', '.join(blocks)}" if blocks else f"{carrier} has none"
            if not owners:
                return [
                    FieldError(
                        "number_criteria.starts_with",
                        "unassigned_prefix",
                        f"No carrier has numbers starting with {prefix}: {where}.",
                    )
                ]
            return [
                FieldError(
                    "number_criteria.starts_with",
                    "carrier_mismatch",
                    f"Numbers starting with {prefix} belong to {', '.join(owners)}, not {carrier}: "
                    f"{where}, or change the carrier.",
                )
            ]
    if own_registration is not None:
        # A resubmission keeps the number the application already holds.
        return []
    page = await inventory.search(conn, criteria, limit=1)
    if not page.items:
        return [
            FieldError(
                "number_criteria",
                "number_unavailable",
                f"No available {carrier} number matches these criteria now: widen them, or find a "
                "number with GET /v1/numbers and give it as requested_number.",
            )
        ]
    return []

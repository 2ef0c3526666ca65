"""Parameters whose values come from data (the carrier table): checked against
it and refused in the same shape as an Enum parameter (api.errors.choice_error)."""

from __future__ import annotations

import asyncpg

from activities.repositories import inventory
from api.errors import InvalidInput, invalid_choices


async def check_carrier(conn: asyncpg.Connection, carrier: str | None) -> None:
    """422 naming ``carrier`` when it is not a carrier code."""
    if carrier is None:
        return
    errors = invalid_choices("carrier", carrier, await inventory.carrier_codes(conn))
    if errors:
        raise InvalidInput(errors=errors)

"""State of the fake carrier's service changes (tables ``fake_carrier_line``,
``fake_carrier_service_request``, ``fake_carrier_service_call``).

Provisioning and injected faults live in ``fake_carrier``; this adds what a
carrier does to a number already in service.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

# The carrier's state for a number after each action.
STATE_AFTER = {
    "resume": "active",
    "restrict": "restricted",
    "suspend": "suspended",
    "freeze": "frozen",
    "deprovision": "deprovisioned",
}


@dataclass(frozen=True, slots=True)
class Line:
    number: str
    state: str
    last_request_id: str


async def apply_request(
    conn: asyncpg.Connection, request_id: str, number: str, carrier_code: str, action: str
) -> bool:
    """Carry out ``action`` once for ``request_id``; False when it was already done.

    Call inside a transaction: the request row and the line move together."""
    inserted = await conn.fetchval(
        """INSERT INTO fake_carrier_service_request (request_id, number, action) VALUES ($1, $2, $3)
           ON CONFLICT (request_id) DO NOTHING RETURNING true""",
        request_id,
        number,
        action,
    )
    if not inserted:
        return False
    await conn.execute(
        """INSERT INTO fake_carrier_line (number, carrier_code, state, last_request_id)
           VALUES ($1, $2, $3, $4)
           ON CONFLICT (number) DO UPDATE SET
               state = EXCLUDED.state, last_request_id = EXCLUDED.last_request_id,
               updated_at = clock_timestamp()""",
        number,
        carrier_code,
        STATE_AFTER[action],
        request_id,
    )
    return True


async def record_call(
    conn: asyncpg.Connection, request_id: str, number: str, action: str, outcome: str
) -> None:
    await conn.execute(
        "INSERT INTO fake_carrier_service_call (request_id, number, action, outcome) VALUES ($1, $2, $3, $4)",
        request_id,
        number,
        action,
        outcome,
    )


async def get_line(conn: asyncpg.Connection, number: str) -> Line | None:
    row = await conn.fetchrow(
        "SELECT number, state, last_request_id FROM fake_carrier_line WHERE number = $1", number
    )
    if row is None:
        return None
    return Line(number=row["number"], state=row["state"], last_request_id=row["last_request_id"])


async def applied_actions(conn: asyncpg.Connection, number: str) -> list[str]:
    """The actions the carrier carried out for ``number``, in order (each request once)."""
    rows = await conn.fetch(
        "SELECT action FROM fake_carrier_service_request WHERE number = $1 ORDER BY applied_at, request_id",
        number,
    )
    return [r["action"] for r in rows]


async def calls_by_outcome(conn: asyncpg.Connection, number: str) -> dict[str, int]:
    rows = await conn.fetch(
        "SELECT outcome, count(*) AS n FROM fake_carrier_service_call WHERE number = $1 GROUP BY outcome",
        number,
    )
    return {r["outcome"]: int(r["n"]) for r in rows}

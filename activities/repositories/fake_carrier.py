"""State of the fake carrier (tables ``fake_carrier_*``): orders, calls, injected faults."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg


@dataclass(frozen=True, slots=True)
class Fault:
    fail_times: int
    reject: bool
    delay_ms: int


@dataclass(frozen=True, slots=True)
class Order:
    request_id: str
    number: str
    status: str
    reference: str
    provisions: int


async def take_fault(conn: asyncpg.Connection, number: str) -> Fault | None:
    """The fault injected for ``number``, consuming one transient failure if any is left."""
    row = await conn.fetchrow(
        """WITH before AS (
               SELECT number, fail_times FROM fake_carrier_fault WHERE number = $1 FOR UPDATE)
           UPDATE fake_carrier_fault f SET fail_times = greatest(f.fail_times - 1, 0)
           FROM before b WHERE f.number = b.number
           RETURNING b.fail_times AS before, f.reject, f.delay_ms""",
        number,
    )
    if row is None:
        return None
    # `before` is the count ahead of this call: positive means this call fails.
    return Fault(fail_times=int(row["before"]), reject=bool(row["reject"]), delay_ms=int(row["delay_ms"]))


async def inject_fault(
    conn: asyncpg.Connection, number: str, *, fail_times: int = 0, reject: bool = False, delay_ms: int = 0
) -> None:
    await conn.execute(
        """INSERT INTO fake_carrier_fault (number, fail_times, reject, delay_ms) VALUES ($1, $2, $3, $4)
           ON CONFLICT (number) DO UPDATE
           SET fail_times = EXCLUDED.fail_times, reject = EXCLUDED.reject, delay_ms = EXCLUDED.delay_ms""",
        number,
        fail_times,
        reject,
        delay_ms,
    )


async def clear_fault(conn: asyncpg.Connection, number: str) -> None:
    await conn.execute("DELETE FROM fake_carrier_fault WHERE number = $1", number)


async def record_call(
    conn: asyncpg.Connection, request_id: str, number: str, operation: str, outcome: str
) -> None:
    await conn.execute(
        "INSERT INTO fake_carrier_call (request_id, number, operation, outcome) VALUES ($1, $2, $3, $4)",
        request_id,
        number,
        operation,
        outcome,
    )


async def provision_first_clear(
    conn: asyncpg.Connection, request_id: str, number: str, carrier_code: str, reference: str
) -> bool:
    """Create the order and record the call, in one statement, if no fault is
    injected for ``number`` and the request has no order yet. False otherwise,
    having changed nothing: the caller then goes the long way (faults, repeats,
    cancelled orders)."""
    made = await conn.fetchval(
        """WITH made AS (
               INSERT INTO fake_carrier_order
                   (request_id, number, carrier_code, status, reference, provisions)
               SELECT $1, $2, $3, 'provisioned', $4, 1
               WHERE NOT EXISTS (SELECT 1 FROM fake_carrier_fault WHERE number = $2)
               ON CONFLICT (request_id) DO NOTHING
               RETURNING request_id
           ), called AS (
               INSERT INTO fake_carrier_call (request_id, number, operation, outcome)
               SELECT request_id, $2, 'provision', 'provisioned' FROM made
           )
           SELECT count(*) FROM made""",
        request_id,
        number,
        carrier_code,
        reference,
    )
    return bool(made)


async def provision_order(
    conn: asyncpg.Connection, request_id: str, number: str, carrier_code: str, reference: str
) -> Order:
    """Create the order once; a repeated request returns the order as it stands."""
    await conn.execute(
        """INSERT INTO fake_carrier_order (request_id, number, carrier_code, status, reference, provisions)
           VALUES ($1, $2, $3, 'provisioned', $4, 1)
           ON CONFLICT (request_id) DO NOTHING""",
        request_id,
        number,
        carrier_code,
        reference,
    )
    order = await get_order(conn, request_id)
    assert order is not None
    return order


async def cancel_order(conn: asyncpg.Connection, request_id: str, number: str, carrier_code: str) -> Order:
    """Cancel the order; cancelling first leaves a tombstone that refuses a late provision."""
    await conn.execute(
        """INSERT INTO fake_carrier_order (request_id, number, carrier_code, status, reference)
           VALUES ($1, $2, $3, 'cancelled', '')
           ON CONFLICT (request_id) DO UPDATE SET status = 'cancelled', updated_at = clock_timestamp()""",
        request_id,
        number,
        carrier_code,
    )
    order = await get_order(conn, request_id)
    assert order is not None
    return order


async def get_order(conn: asyncpg.Connection, request_id: str) -> Order | None:
    row = await conn.fetchrow(
        """SELECT request_id, number, status, reference, provisions
           FROM fake_carrier_order WHERE request_id = $1""",
        request_id,
    )
    if row is None:
        return None
    return Order(
        request_id=row["request_id"],
        number=row["number"],
        status=row["status"],
        reference=row["reference"],
        provisions=row["provisions"],
    )


async def count_calls(
    conn: asyncpg.Connection, request_id: str, operation: str = "provision"
) -> dict[str, int]:
    """Calls received for ``request_id``, by outcome."""
    rows = await conn.fetch(
        """SELECT outcome, count(*) AS n FROM fake_carrier_call
           WHERE request_id = $1 AND operation = $2 GROUP BY outcome""",
        request_id,
        operation,
    )
    return {r["outcome"]: int(r["n"]) for r in rows}

"""Numbers for tests: fresh rows in the real inventory table.

Workflow tests commit real rows and share one database per session, so every
test takes numbers nobody else has used: random ones, checked against the table.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg

from activities.repositories.inventory import insert_numbers

# Importer tests load whole 7-digit prefixes of 4009; keep random numbers out of them.
DEFAULT_PREFIX = "4001"


def new_registration_id() -> str:
    return f"reg-{uuid.uuid4()}"


def in_minutes(minutes: float) -> datetime:
    return datetime.now(UTC) + timedelta(minutes=minutes)


async def add_fresh_numbers(
    conn: asyncpg.Connection | asyncpg.Pool,
    count: int = 1,
    prefix: str = DEFAULT_PREFIX,
    rng: random.Random | None = None,
) -> list[str]:
    """``count`` numbers starting with ``prefix`` that were not in the inventory, now available."""
    rng = rng or random.Random()
    free = 10 - len(prefix)
    found: list[str] = []
    while len(found) < count:
        candidates = list(
            {f"{prefix}{rng.randrange(10**free):0{free}d}" for _ in range(2 * (count - len(found)))}
            - set(found)
        )
        taken = {
            r["number"]
            for r in await conn.fetch(
                "SELECT number FROM number_inventory WHERE number = ANY($1::text[])", candidates
            )
        }
        fresh = [n for n in candidates if n not in taken][: count - len(found)]
        if isinstance(conn, asyncpg.Pool):
            async with conn.acquire() as c:
                await insert_numbers(c, fresh)
        else:
            await insert_numbers(conn, fresh)
        found += fresh
    return found


async def delete_numbers(pool: asyncpg.Pool, numbers: list[str]) -> None:
    """Remove committed test numbers so that later tests (and counts) do not see them."""
    await pool.execute("DELETE FROM number_inventory WHERE number = ANY($1::text[])", numbers)

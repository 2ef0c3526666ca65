"""SQL reading the global event feed (``domain_event`` in ``position`` order)."""

from __future__ import annotations

import asyncpg


async def after(conn: asyncpg.Connection, position: int, limit: int) -> list[asyncpg.Record]:
    """Events after ``position`` in position order, with how many seconds ago each
    was inserted (by the database's clock): a position can become visible after a
    higher one, because identity values are taken at insert, not at commit.
    """
    rows: list[asyncpg.Record] = await conn.fetch(
        """SELECT e.position, e.stream_id, e.version, e.event_id::text AS event_id, e.event_type,
                  e.actor_role, e.reason, e.occurred_at, e.payload,
                  extract(epoch FROM clock_timestamp() - e.recorded_at)::float8 AS age_seconds,
                  r.carrier_code, r.organisation_id
           FROM domain_event e LEFT JOIN registration r ON r.id = e.stream_id
           WHERE e.position > $1
           ORDER BY e.position LIMIT $2""",
        position,
        limit,
    )
    return rows


async def last_position(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("SELECT coalesce(max(position), 0) FROM domain_event"))

"""SQL reading the global event feed (``domain_event`` in ``position`` order)."""

from __future__ import annotations

import asyncpg

# The streams the feed carries: registrations', whose ids are their
# application ids (app_<...>, api/ids.py). The console's audit streams in the
# same log (staff:<id>, access:<application id>) are not for API clients.
REGISTRATION_STREAMS = r"app\_%"


async def after(conn: asyncpg.Connection, position: int, limit: int) -> list[asyncpg.Record]:
    """Events after ``position`` in position order, with how many seconds ago each
    was inserted (by the database's clock): a position can become visible after a
    higher one, because identity values are taken at insert, not at commit.

    An event of another stream than a registration's comes as its position and
    age alone (every other column NULL): the feed steps over it rather than
    waiting for it as for a gap, and nothing of it is read.
    """
    rows: list[asyncpg.Record] = await conn.fetch(
        """WITH page AS (
               SELECT position, stream_id, recorded_at FROM domain_event
               WHERE position > $1 ORDER BY position LIMIT $2
           )
           SELECT p.position, extract(epoch FROM clock_timestamp() - p.recorded_at)::float8 AS age_seconds,
                  e.stream_id, e.version, e.event_id::text AS event_id, e.event_type,
                  e.actor_role, e.reason, e.occurred_at, e.payload, r.carrier_code, r.organisation_id
           FROM page p
           LEFT JOIN domain_event e ON e.position = p.position AND p.stream_id LIKE $3
           LEFT JOIN registration r ON r.id = e.stream_id
           ORDER BY p.position""",
        position,
        limit,
        REGISTRATION_STREAMS,
    )
    return rows


async def last_position(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("SELECT coalesce(max(position), 0) FROM domain_event"))

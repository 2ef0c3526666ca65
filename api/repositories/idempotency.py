"""SQL for idempotency keys."""

from __future__ import annotations

import asyncpg


async def get(conn: asyncpg.Connection, organisation_id: str, key: str) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        """SELECT organisation_id, key, operation, request_hash, resource_id, created_at
           FROM idempotency_key WHERE organisation_id = $1 AND key = $2""",
        organisation_id,
        key,
    )
    return row


async def claim(
    conn: asyncpg.Connection,
    *,
    organisation_id: str,
    key: str,
    operation: str,
    request_hash: bytes,
    resource_id: str,
) -> bool:
    """Records the key; False if it was already taken (then read it with ``get``).

    A concurrent claim of the same key waits here on the primary key until the
    first transaction ends, then sees its row: exactly one claim wins.
    """
    inserted = await conn.fetchval(
        """INSERT INTO idempotency_key (organisation_id, key, operation, request_hash, resource_id)
           VALUES ($1, $2, $3, $4, $5) ON CONFLICT (organisation_id, key) DO NOTHING RETURNING true""",
        organisation_id,
        key,
        operation,
        request_hash,
        resource_id,
    )
    return bool(inserted)

"""SQL for API keys."""

from __future__ import annotations

from datetime import datetime

import asyncpg

_COLUMNS = "id, secret_hash, role, organisation_id, name, created_by, created_at, revoked_at, expires_at"


async def insert(
    conn: asyncpg.Connection,
    *,
    key_id: str,
    secret_hash: bytes,
    role: str,
    organisation_id: str | None,
    name: str,
    created_by: str,
    expires_at: datetime | None = None,
) -> asyncpg.Record:
    row: asyncpg.Record = await conn.fetchrow(
        f"""INSERT INTO api_key (id, secret_hash, role, organisation_id, name, created_by, expires_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {_COLUMNS}""",
        key_id,
        secret_hash,
        role,
        organisation_id,
        name,
        created_by,
        expires_at,
    )
    return row


async def get(conn: asyncpg.Connection, key_id: str) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(f"SELECT {_COLUMNS} FROM api_key WHERE id = $1", key_id)
    return row


async def revoke(conn: asyncpg.Connection, key_id: str) -> asyncpg.Record | None:
    """Revokes the key (keeping the first revocation time); None if there is no such key."""
    row: asyncpg.Record | None = await conn.fetchrow(
        f"""UPDATE api_key SET revoked_at = coalesce(revoked_at, now())
            WHERE id = $1 RETURNING {_COLUMNS}""",
        key_id,
    )
    return row


async def list_keys(
    conn: asyncpg.Connection, *, include_revoked: bool, organisation_id: str | None = None
) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        f"""SELECT {_COLUMNS} FROM api_key
            WHERE ($1 OR revoked_at IS NULL) AND ($2::text IS NULL OR organisation_id = $2)
            ORDER BY created_at, id""",
        include_revoked,
        organisation_id,
    )
    return rows

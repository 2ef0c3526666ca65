"""SQL for the encrypted application forms (``application_form``) and the
access log of personal data (its own ``domain_event`` streams)."""

from __future__ import annotations

import asyncpg


async def insert(
    conn: asyncpg.Connection, application_id: str, *, key_id: str, content: bytes, accepted: bool
) -> int:
    """Stores the next version of the application's form; its sequence number."""
    seq: int = await conn.fetchval(
        """INSERT INTO application_form (application_id, seq, accepted, encryption_key_id, content)
           SELECT $1, coalesce(max(seq), 0) + 1, $2, $3, $4 FROM application_form WHERE application_id = $1
           RETURNING seq""",
        application_id,
        accepted,
        key_id,
        content,
    )
    return seq


async def insert_submitted(
    conn: asyncpg.Connection, application_id: str, *, key_id: str, content: bytes
) -> None:
    """Stores the form as submitted (version 1, accepted), unless it is there
    already: a retried or concurrent start of the same submission."""
    await conn.execute(
        """INSERT INTO application_form (application_id, seq, accepted, encryption_key_id, content)
           VALUES ($1, 1, true, $2, $3) ON CONFLICT (application_id, seq) DO NOTHING""",
        application_id,
        key_id,
        content,
    )


async def accept(conn: asyncpg.Connection, application_id: str, seq: int) -> None:
    await conn.execute(
        "UPDATE application_form SET accepted = true WHERE application_id = $1 AND seq = $2",
        application_id,
        seq,
    )


async def latest_accepted(conn: asyncpg.Connection, application_id: str) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        """SELECT seq, encryption_key_id, content FROM application_form
           WHERE application_id = $1 AND accepted ORDER BY seq DESC LIMIT 1""",
        application_id,
    )
    return row


async def stream(conn: asyncpg.Connection, stream_id: str) -> list[asyncpg.Record]:
    """The events of one stream that is not a registration's (an access log), oldest first."""
    rows: list[asyncpg.Record] = await conn.fetch(
        """SELECT version, event_type, actor, actor_role, reason, payload, occurred_at
           FROM domain_event WHERE stream_id = $1 ORDER BY version""",
        stream_id,
    )
    return rows

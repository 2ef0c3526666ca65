"""SQL for uploaded documents."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

_META = """id, organisation_id, kind, content_type, filename, size_bytes, sha256, replaces_id,
    replaced_by_id, uploaded_by, created_at"""


async def insert(
    conn: asyncpg.Connection,
    *,
    document_id: str,
    organisation_id: str,
    kind: str,
    content_type: str,
    filename: str | None,
    size_bytes: int,
    sha256: str,
    encryption_key_id: str,
    content: bytes,
    uploaded_by: str,
    replaces_id: str | None = None,
) -> asyncpg.Record:
    row: asyncpg.Record = await conn.fetchrow(
        f"""INSERT INTO document (id, organisation_id, kind, content_type, filename, size_bytes, sha256,
                encryption_key_id, content, uploaded_by, replaces_id)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING {_META}""",
        document_id,
        organisation_id,
        kind,
        content_type,
        filename,
        size_bytes,
        sha256,
        encryption_key_id,
        content,
        uploaded_by,
        replaces_id,
    )
    return row


async def get(conn: asyncpg.Connection, document_id: str) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        f"SELECT {_META} FROM document WHERE id = $1", document_id
    )
    return row


async def get_for_update(conn: asyncpg.Connection, document_id: str) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        f"SELECT {_META} FROM document WHERE id = $1 FOR UPDATE", document_id
    )
    return row


async def get_content(conn: asyncpg.Connection, document_id: str) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        f"SELECT {_META}, encryption_key_id, content FROM document WHERE id = $1", document_id
    )
    return row


async def get_many(
    conn: asyncpg.Connection, organisation_id: str, document_ids: Sequence[str]
) -> dict[str, asyncpg.Record]:
    rows = await conn.fetch(
        f"SELECT {_META} FROM document WHERE organisation_id = $1 AND id = ANY($2::text[])",
        organisation_id,
        list(document_ids),
    )
    return {r["id"]: r for r in rows}


async def mark_replaced(conn: asyncpg.Connection, document_id: str, replaced_by_id: str) -> None:
    await conn.execute("UPDATE document SET replaced_by_id = $2 WHERE id = $1", document_id, replaced_by_id)


async def attach(conn: asyncpg.Connection, application_id: str, document_ids: Sequence[str]) -> None:
    await conn.execute(
        """INSERT INTO application_document (application_id, document_id)
           SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING""",
        application_id,
        list(document_ids),
    )


async def list_for_application(conn: asyncpg.Connection, application_id: str) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        f"""SELECT {", ".join("d." + c.strip() for c in _META.split(","))}, ad.attached_at
            FROM application_document ad JOIN document d ON d.id = ad.document_id
            WHERE ad.application_id = $1 ORDER BY ad.attached_at, d.id""",
        application_id,
    )
    return rows

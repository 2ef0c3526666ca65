"""SQL of webhook endpoints as the API manages them, and of their delivery log."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg

from activities.repositories.webhooks import notify
from domain.webhooks import DEADLINE_APPROACHING

ENDPOINT_COLUMNS = """id, organisation_id, url, description, event_types, enabled, disabled_reason,
    disabled_detail, disabled_at, failing_since, secret_rotated_at, previous_secret_expires_at,
    created_at, updated_at"""


async def insert_endpoint(
    conn: asyncpg.Connection,
    *,
    endpoint_id: str,
    organisation_id: str,
    url: str,
    description: str | None,
    event_types: list[str],
    routes: dict[str, list[str]],
    enabled: bool,
    secret_key_id: str,
    secret: bytes,
    created_by: str,
) -> asyncpg.Record:
    row: asyncpg.Record = await conn.fetchrow(
        f"""INSERT INTO webhook_endpoint (id, organisation_id, url, description, event_types, routes,
                enabled, disabled_reason, disabled_at, secret_key_id, secret, created_by)
            VALUES ($1, $2, $3, $4, $5, $6, $7, CASE WHEN $7 THEN NULL ELSE 'owner' END,
                    CASE WHEN $7 THEN NULL ELSE clock_timestamp() END, $8, $9, $10)
            RETURNING {ENDPOINT_COLUMNS}""",
        endpoint_id,
        organisation_id,
        url,
        description,
        event_types,
        routes,
        enabled,
        secret_key_id,
        secret,
        created_by,
    )
    return row


async def get_endpoint(
    conn: asyncpg.Connection, endpoint_id: str, organisation_id: str | None
) -> asyncpg.Record | None:
    """The endpoint, if it exists and (when ``organisation_id`` is given) is that organisation's."""
    return await conn.fetchrow(
        f"""SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoint
            WHERE id = $1 AND ($2::text IS NULL OR organisation_id = $2)""",
        endpoint_id,
        organisation_id,
    )


async def list_endpoints(
    conn: asyncpg.Connection,
    organisation_id: str | None,
    *,
    after: tuple[datetime, str] | None,
    limit: int,
) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        f"""SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoint
            WHERE ($1::text IS NULL OR organisation_id = $1)
              AND ($2::timestamptz IS NULL OR (created_at, id) > ($2, $3))
            ORDER BY created_at, id LIMIT $4""",
        organisation_id,
        after[0] if after else None,
        after[1] if after else None,
        limit,
    )
    return rows


async def update_endpoint(
    conn: asyncpg.Connection, endpoint_id: str, changes: dict[str, Any]
) -> asyncpg.Record | None:
    """Set ``changes`` (column: value; column names come from the service, never
    from the client). Enabling clears why it was disabled and its failure clock."""
    sets = [f"{column} = ${n}" for n, column in enumerate(changes, start=2)]
    if changes.get("enabled") is True:
        sets += [
            "disabled_reason = NULL",
            "disabled_detail = NULL",
            "disabled_at = NULL",
            "failing_since = NULL",
        ]
    sets.append("updated_at = clock_timestamp()")
    return await conn.fetchrow(
        f"UPDATE webhook_endpoint SET {', '.join(sets)} WHERE id = $1 RETURNING {ENDPOINT_COLUMNS}",
        endpoint_id,
        *changes.values(),
    )


async def rotate_secret(
    conn: asyncpg.Connection, endpoint_id: str, *, secret_key_id: str, secret: bytes, overlap_seconds: float
) -> asyncpg.Record:
    row: asyncpg.Record = await conn.fetchrow(
        f"""UPDATE webhook_endpoint SET
                previous_secret_key_id = secret_key_id,
                previous_secret = secret,
                previous_secret_expires_at = clock_timestamp() + $4 * interval '1 second',
                secret_key_id = $2,
                secret = $3,
                secret_rotated_at = clock_timestamp(),
                updated_at = clock_timestamp()
            WHERE id = $1 RETURNING {ENDPOINT_COLUMNS}""",
        endpoint_id,
        secret_key_id,
        secret,
        overlap_seconds,
    )
    return row


async def delete_endpoint(conn: asyncpg.Connection, endpoint_id: str) -> None:
    await conn.execute("DELETE FROM webhook_endpoint WHERE id = $1", endpoint_id)


_DELIVERY_COLUMNS = """id, seq, endpoint_id, application_id, event_type, status, attempts, next_attempt_at,
    failure_reason, created_at, ended_at, payload"""


async def list_deliveries(
    conn: asyncpg.Connection,
    endpoint_id: str,
    *,
    status: str | None,
    event_type: str | None,
    application_id: str | None,
    before_seq: int | None,
    limit: int,
) -> list[asyncpg.Record]:
    """Newest first."""
    rows: list[asyncpg.Record] = await conn.fetch(
        f"""SELECT {_DELIVERY_COLUMNS} FROM webhook_delivery
            WHERE endpoint_id = $1
              AND ($2::text IS NULL OR status = $2)
              AND ($3::text IS NULL OR event_type = $3)
              AND ($4::text IS NULL OR application_id = $4)
              AND ($5::bigint IS NULL OR seq < $5)
            ORDER BY seq DESC LIMIT $6""",
        endpoint_id,
        status,
        event_type,
        application_id,
        before_seq,
        limit,
    )
    return rows


async def get_delivery(
    conn: asyncpg.Connection, endpoint_id: str, delivery_id: uuid.UUID
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {_DELIVERY_COLUMNS} FROM webhook_delivery WHERE id = $1 AND endpoint_id = $2",
        delivery_id,
        endpoint_id,
    )


async def attempts_of(conn: asyncpg.Connection, delivery_ids: list[uuid.UUID]) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        """SELECT delivery_id, number, attempted_at, status_code, latency_ms, response_body, error, succeeded
           FROM webhook_attempt WHERE delivery_id = ANY($1::uuid[]) ORDER BY delivery_id, id""",
        delivery_ids,
    )
    return rows


# A delivery sent again: pending now, a fresh retry window, and the back of
# its application's queue (a new seq), keeping its id and so its webhook-id.
_REQUEUE = """status = 'pending', seq = nextval('webhook_delivery_seq'),
    next_attempt_at = clock_timestamp(), first_attempt_at = NULL, window_failures = 0, leased_until = NULL,
    ended_at = NULL, failure_reason = NULL"""


async def requeue_delivery(
    conn: asyncpg.Connection, endpoint_id: str, delivery_id: uuid.UUID
) -> asyncpg.Record | None:
    """Queue a delivery that is not pending again; None if it is pending (or not there)."""
    row = await conn.fetchrow(
        f"""UPDATE webhook_delivery SET {_REQUEUE}
            WHERE id = $1 AND endpoint_id = $2 AND status <> 'pending'
            RETURNING {_DELIVERY_COLUMNS}""",
        delivery_id,
        endpoint_id,
    )
    if row is not None:
        await notify(conn, endpoint_id)
    return row


def _queue_src(source: str) -> str:
    """The end of a replay statement: queue each row of ``src`` (``application_id``,
    ``type`` and ``source``, the column naming what the message is of) for
    endpoint $1, and count the rows and those queued."""
    return f""", queued AS (
                INSERT INTO webhook_delivery (endpoint_id, application_id, event_type, {source})
                SELECT $1, application_id, type, {source} FROM src
                ON CONFLICT (endpoint_id, {source}, event_type) WHERE {source} IS NOT NULL
                DO UPDATE SET {_REQUEUE}
                WHERE webhook_delivery.status <> 'pending'
                RETURNING 1
            )
            SELECT (SELECT count(*) FROM src) AS matched, (SELECT count(*) FROM queued) AS queued"""


async def replay(
    conn: asyncpg.Connection,
    *,
    endpoint_id: str,
    organisation_id: str,
    routes: dict[str, list[str]],
    since: datetime,
    until: datetime | None,
    at_most: int,
) -> int | None:
    """Queue, for the endpoint, every message its subscriptions give for the
    organisation's events recorded (and deadline notices made) in [since,
    until), in event order: again with their first id where one was sent (or
    failed) before, for the first time where none was (say, while the endpoint
    was disabled). Pending ones are on their way and stay as they are.

    How many were queued; None when the period holds more than ``at_most``
    messages (some were queued then: the caller rolls its transaction back).
    Counted in the statements, never fetched: at most ``at_most + 1`` rows are
    read."""
    events = await conn.fetchrow(
        f"""WITH streams AS (
                SELECT id FROM registration WHERE organisation_id = $2
                UNION SELECT id FROM application WHERE organisation_id = $2
            ), src AS (
                SELECT e.position AS event_position, e.stream_id AS application_id, t.type
                FROM domain_event e
                CROSS JOIN LATERAL jsonb_array_elements_text($3::jsonb -> e.event_type)
                    WITH ORDINALITY AS t(type, n)
                WHERE e.stream_id IN (SELECT id FROM streams)
                  AND e.recorded_at >= $4 AND ($5::timestamptz IS NULL OR e.recorded_at < $5)
                ORDER BY e.position, t.n
                LIMIT $6
            ){_queue_src("event_position")}""",
        endpoint_id,
        organisation_id,
        routes,
        since,
        until,
        at_most + 1,
    )
    if events["matched"] > at_most:
        return None
    notices = await conn.fetchrow(
        f"""WITH src AS (
                SELECT n.id AS notice_id, n.application_id, t.type
                FROM deadline_notice n
                CROSS JOIN LATERAL jsonb_array_elements_text($3::jsonb -> '{DEADLINE_APPROACHING}')
                    WITH ORDINALITY AS t(type, n)
                WHERE n.organisation_id = $2 AND n.noticed_at >= $4
                  AND ($5::timestamptz IS NULL OR n.noticed_at < $5)
                ORDER BY n.id, t.n
                LIMIT $6
            ){_queue_src("notice_id")}""",
        endpoint_id,
        organisation_id,
        routes,
        since,
        until,
        at_most + 1 - events["matched"],
    )
    if events["matched"] + notices["matched"] > at_most:
        return None
    queued = int(events["queued"] + notices["queued"])
    if queued:
        await notify(conn, endpoint_id)
    return queued

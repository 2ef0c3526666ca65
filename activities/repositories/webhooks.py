"""SQL of webhook delivery: the sender's work list, attempts, endpoint health,
deadline notices, and what the API shares with the sender (disabling an
endpoint, waking its sender).

Deliveries are queued by triggers (migrations/20261201100000_webhooks.sql), in
the transaction of the event or notice they carry; nothing here writes a
domain event.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

NOTIFY_CHANNEL = "webhook_delivery"


async def get_endpoint(conn: asyncpg.Connection, endpoint_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM webhook_endpoint WHERE id = $1", endpoint_id)


async def claim_due(
    conn: asyncpg.Connection, endpoint_id: str, lease_seconds: float, limit: int
) -> list[asyncpg.Record]:
    """Lease the deliveries that may be sent now: of each application only the
    oldest pending one (event order per application), if it is due and not
    leased by another sender. The conditions on ``d`` are checked again on the
    row a concurrent sender may just have leased, so two never take the same."""
    rows: list[asyncpg.Record] = await conn.fetch(
        """WITH heads AS (
               SELECT DISTINCT ON (application_id) id, seq, next_attempt_at, leased_until
               FROM webhook_delivery
               WHERE endpoint_id = $1 AND status = 'pending'
               ORDER BY application_id, seq
           ), due AS (
               SELECT id FROM heads
               WHERE next_attempt_at <= clock_timestamp()
                 AND (leased_until IS NULL OR leased_until <= clock_timestamp())
               ORDER BY seq LIMIT $3
           )
           UPDATE webhook_delivery d
           SET leased_until = clock_timestamp() + $2 * interval '1 second'
           FROM due
           WHERE d.id = due.id AND d.status = 'pending'
             AND (d.leased_until IS NULL OR d.leased_until <= clock_timestamp())
           RETURNING d.id, d.seq, d.application_id, d.event_type, d.event_position, d.notice_id,
                     d.attempts, d.window_failures, d.first_attempt_at, d.payload""",
        endpoint_id,
        lease_seconds,
        limit,
    )
    return sorted(rows, key=lambda r: r["seq"])


async def next_due_in(conn: asyncpg.Connection, endpoint_id: str) -> float | None:
    """Seconds until a pending delivery of the endpoint may be tried (0 if one
    may now); None when none is pending."""
    value = await conn.fetchval(
        """WITH heads AS (
               SELECT DISTINCT ON (application_id) next_attempt_at, leased_until
               FROM webhook_delivery
               WHERE endpoint_id = $1 AND status = 'pending'
               ORDER BY application_id, seq
           )
           SELECT extract(epoch FROM min(greatest(next_attempt_at, coalesce(leased_until, next_attempt_at)))
                                     - clock_timestamp())::float8
           FROM heads""",
        endpoint_id,
    )
    return None if value is None else max(float(value), 0.0)


async def events_at(conn: asyncpg.Connection, positions: list[int]) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        """SELECT position, stream_id, version, event_id::text AS event_id, event_type, payload,
                  occurred_at, recorded_at
           FROM domain_event WHERE position = ANY($1::bigint[])""",
        positions,
    )
    return rows


async def notices(conn: asyncpg.Connection, notice_ids: list[int]) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        "SELECT * FROM deadline_notice WHERE id = ANY($1::bigint[])", notice_ids
    )
    return rows


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """One attempt and where it leaves its delivery."""

    delivery_id: uuid.UUID
    number: int
    attempted_at: datetime
    status_code: int | None
    latency_ms: float
    response_body: str | None
    error: str | None
    succeeded: bool
    # pending (with next_attempt_at), succeeded or failed (with failure_reason)
    status: str
    next_attempt_at: datetime | None
    window_failures: int
    failure_reason: str | None
    payload: dict[str, Any]


async def record_attempts(conn: asyncpg.Connection, records: list[AttemptRecord]) -> None:
    """Every attempt of a pass, and its delivery's new state, in two statements."""
    await conn.execute(
        """INSERT INTO webhook_attempt (delivery_id, number, attempted_at, status_code, latency_ms,
               response_body, error, succeeded)
           SELECT * FROM unnest($1::uuid[], $2::int[], $3::timestamptz[], $4::int[], $5::float8[],
                                $6::text[], $7::text[], $8::bool[])""",
        [r.delivery_id for r in records],
        [r.number for r in records],
        [r.attempted_at for r in records],
        [r.status_code for r in records],
        [r.latency_ms for r in records],
        [r.response_body for r in records],
        [r.error for r in records],
        [r.succeeded for r in records],
    )
    await conn.execute(
        """UPDATE webhook_delivery d SET
               attempts = greatest(d.attempts, u.number),
               window_failures = u.window_failures,
               status = u.status,
               next_attempt_at = coalesce(u.next_attempt_at, d.next_attempt_at),
               first_attempt_at = coalesce(d.first_attempt_at, u.attempted_at),
               payload = coalesce(d.payload, u.payload),
               leased_until = NULL,
               last_status_code = u.status_code,
               last_error = u.error,
               ended_at = CASE WHEN u.status = 'pending' THEN NULL ELSE u.attempted_at END,
               failure_reason = u.failure_reason
           FROM unnest($1::uuid[], $2::int[], $3::int[], $4::text[], $5::timestamptz[],
                       $6::timestamptz[], $7::int[], $8::text[], $9::text[], $10::jsonb[])
                AS u(id, number, window_failures, status, next_attempt_at, attempted_at, status_code,
                     error, failure_reason, payload)
           WHERE d.id = u.id""",
        [r.delivery_id for r in records],
        [r.number for r in records],
        [r.window_failures for r in records],
        [r.status for r in records],
        [r.next_attempt_at for r in records],
        [r.attempted_at for r in records],
        [r.status_code for r in records],
        [r.error for r in records],
        [r.failure_reason for r in records],
        [r.payload for r in records],
    )


async def mark_health(conn: asyncpg.Connection, endpoint_id: str, *, first_failure: datetime | None) -> None:
    """A success clears ``failing_since`` (``first_failure`` None); a pass with
    failures only starts it, if it is not running already."""
    if first_failure is None:
        await conn.execute(
            "UPDATE webhook_endpoint SET failing_since = NULL WHERE id = $1 AND failing_since IS NOT NULL",
            endpoint_id,
        )
    else:
        await conn.execute(
            "UPDATE webhook_endpoint SET failing_since = $2 WHERE id = $1 AND failing_since IS NULL",
            endpoint_id,
            first_failure,
        )


async def disable_endpoint(
    conn: asyncpg.Connection,
    endpoint_id: str,
    reason: str,
    detail: str,
    *,
    failing_since_at_most: datetime | None = None,
) -> bool:
    """Disable the endpoint and end its pending deliveries as failed (a replay
    sends them again once it is enabled). With ``failing_since_at_most``, only
    if nothing was delivered to it since then. True if this disabled it."""
    disabled = await conn.fetchval(
        """UPDATE webhook_endpoint SET enabled = false, disabled_reason = $2, disabled_detail = $3,
               disabled_at = clock_timestamp(), updated_at = clock_timestamp()
           WHERE id = $1 AND enabled AND ($4::timestamptz IS NULL OR failing_since <= $4)
           RETURNING true""",
        endpoint_id,
        reason,
        detail,
        failing_since_at_most,
    )
    if disabled:
        await conn.execute(
            """UPDATE webhook_delivery SET status = 'failed', failure_reason = 'endpoint_disabled',
                   ended_at = clock_timestamp(), leased_until = NULL
               WHERE endpoint_id = $1 AND status = 'pending'""",
            endpoint_id,
        )
    return bool(disabled)


async def notify(conn: asyncpg.Connection, endpoint_id: str) -> None:
    """Wake the endpoint's sender when the caller's transaction commits."""
    await conn.execute("SELECT pg_notify($1, $2)", NOTIFY_CHANNEL, endpoint_id)


async def endpoints_with_due(conn: asyncpg.Connection, overdue_seconds: float) -> list[str]:
    """Endpoints whose pending deliveries have been due for ``overdue_seconds``
    and are not being sent (no live lease): their wake-up may have been lost."""
    rows = await conn.fetch(
        """SELECT DISTINCT endpoint_id FROM webhook_delivery
           WHERE status = 'pending'
             AND next_attempt_at <= clock_timestamp() - $1 * interval '1 second'
             AND (leased_until IS NULL OR leased_until <= clock_timestamp())""",
        overdue_seconds,
    )
    return [r["endpoint_id"] for r in rows]


async def approaching_deadlines(conn: asyncpg.Connection, lead_seconds: float) -> list[asyncpg.Record]:
    """Registrations whose next deadline falls within ``lead_seconds`` from now
    and has no notice yet."""
    rows: list[asyncpg.Record] = await conn.fetch(
        """SELECT r.id, r.organisation_id, r.next_deadline, r.next_deadline_kind, r.stage, r.status
           FROM registration r
           WHERE r.next_deadline > clock_timestamp()
             AND r.next_deadline <= clock_timestamp() + $1 * interval '1 second'
             AND NOT EXISTS (SELECT 1 FROM deadline_notice n
                             WHERE n.application_id = r.id AND n.deadline_at = r.next_deadline)""",
        lead_seconds,
    )
    return rows


async def record_notice(
    conn: asyncpg.Connection,
    *,
    application_id: str,
    organisation_id: str,
    deadline_at: datetime,
    kind: str,
    stage: str,
    status: str,
) -> bool:
    """Record a notice once (its insert queues the deliveries); False if it was already."""
    inserted = await conn.fetchval(
        """INSERT INTO deadline_notice (application_id, organisation_id, deadline_at, kind, stage, status)
           VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (application_id, deadline_at, kind) DO NOTHING
           RETURNING true""",
        application_id,
        organisation_id,
        deadline_at,
        kind,
        stage,
        status,
    )
    return bool(inserted)

"""SQL of the service after activation: its events, its read-model columns, and
the release of its number when the quarantine is over.

Service events go into the registration's own stream in ``domain_event`` (the
registration carries on after ACTIVE; one stream tells its whole life). The
version is taken as the stream's next one inside the appending transaction
rather than counted by the workflow: from ACTIVE on the service is the
stream's only writer, and this way it does not depend on the
registration's count being carried over exactly. Idempotency is by
``event_id``, which the workflow derives from the change's sequence number.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from domain.details import apply_to_summary


async def stored_event_type(conn: asyncpg.Connection, event_id: str) -> str | None:
    """The type of the event stored under ``event_id``, if one is."""
    found: str | None = await conn.fetchval(
        "SELECT event_type FROM domain_event WHERE event_id = $1", uuid.UUID(event_id)
    )
    return found


async def append_event(
    conn: asyncpg.Connection,
    *,
    stream_id: str,
    event_id: str,
    event_type: str,
    actor: str,
    actor_role: str,
    reason: str | None,
    correlation_id: str,
    payload: dict[str, Any],
    occurred_at: datetime,
) -> int | None:
    """Append at the stream's next version; the version, or None when ``event_id``
    is already stored (a retry: nothing written).

    Two writers racing for the same version: the loser gets a UniqueViolationError
    on the primary key and its transaction rolls back, to be retried."""
    version = await conn.fetchval(
        """INSERT INTO domain_event (stream_id, version, event_id, event_type, actor, actor_role,
               reason, correlation_id, payload, occurred_at)
           SELECT $1, coalesce(max(version), 0) + 1, $2, $3, $4, $5, $6, $7, $8, $9
           FROM domain_event WHERE stream_id = $1
           ON CONFLICT (event_id) DO NOTHING
           RETURNING version""",
        stream_id,
        uuid.UUID(event_id),
        event_type,
        actor,
        actor_role,
        reason,
        correlation_id,
        payload,
        occurred_at,
    )
    return None if version is None else int(version)


async def save_service_view(
    conn: asyncpg.Connection,
    *,
    registration_id: str,
    version: int,
    service_state: str,
    arrears_stage: str,
    realname_stage: str,
    realname_due_at: datetime | None,
    balance_fen: int,
    next_deadline: datetime | None,
    next_deadline_kind: str | None,
    overdue: bool,
    stage: str,
    status: str,
    lifecycle: str,
    updated_at: datetime,
) -> bool:
    """Move the registration's read-model row to the service's view at ``version``.

    The service columns, balance, deadline and overdue change, and stage, status
    and lifecycle once the service has ended (closed: terminated or reclaimed).
    An older version never overwrites a newer one. False when there is no row
    (or it is newer already)."""
    result: str = await conn.execute(
        """UPDATE registration SET
               service_state = $3,
               arrears_stage = $4,
               realname_stage = $5,
               realname_due_at = $6,
               balance_fen = $7,
               next_deadline = $8,
               next_deadline_kind = $9,
               overdue = $10,
               stage = $11,
               status = $12,
               lifecycle = $13,
               last_event_version = $2,
               updated_at = $14
           WHERE id = $1 AND last_event_version < $2""",
        registration_id,
        version,
        service_state,
        arrears_stage,
        realname_stage,
        realname_due_at,
        balance_fen,
        next_deadline,
        next_deadline_kind,
        overdue,
        stage,
        status,
        lifecycle,
        updated_at,
    )
    return result.endswith(" 1")


async def update_current_details(
    conn: asyncpg.Connection, registration_id: str, details: dict[str, Any]
) -> None:
    """Keep the holder's reported details (masked) as the read model's current
    ones: in its summary, at the places the application keeps them
    (``domain.details.apply_to_summary``), and the company name's column."""
    summary = await conn.fetchval(
        "SELECT summary FROM registration WHERE id = $1 FOR UPDATE", registration_id
    )
    if summary is None:
        return
    updated = apply_to_summary(dict(summary), details)
    await conn.execute(
        "UPDATE registration SET summary = $2, company_name = coalesce($3, company_name) WHERE id = $1",
        registration_id,
        updated,
        updated.get("company_name"),
    )


async def release_quarantined(
    conn: asyncpg.Connection, number: str, registration_id: str, now: datetime
) -> bool:
    """quarantined → available for this one number, once its quarantine is over at ``now``.

    Per number, rather than ``inventory.release_expired`` (a sweep over every
    number), because ``now`` is the workflow's clock: under a time-skipping test
    server it is far ahead of the database's, and a sweep at that time would free
    other registrations' holds. True if this call released it; False if it was
    already released (by the sweeper, or a retry) or is not this registration's."""
    released = await conn.fetchval(
        """UPDATE number_inventory SET
               status = 'available',
               quarantine_until = NULL,
               status_changed_at = statement_timestamp(),
               version = version + 1
           WHERE number = $1 AND status = 'quarantined' AND previous_registration_id = $2
             AND quarantine_until <= $3
           RETURNING true""",
        number,
        registration_id,
        now,
    )
    return bool(released)


@dataclass(frozen=True, slots=True)
class EventLag:
    """Seconds from when events were due (``occurred_at``) to when they were stored."""

    count: int
    first: float
    p50: float
    p99: float
    last: float


async def event_lag(conn: asyncpg.Connection, event_type: str) -> EventLag:
    row = await conn.fetchrow(
        """WITH lag AS (
               SELECT extract(epoch FROM recorded_at - occurred_at)::float8 AS s
               FROM domain_event WHERE event_type = $1)
           SELECT count(*) AS n, coalesce(min(s), 0) AS first, coalesce(max(s), 0) AS last,
                  coalesce(percentile_cont(0.5) WITHIN GROUP (ORDER BY s), 0) AS p50,
                  coalesce(percentile_cont(0.99) WITHIN GROUP (ORDER BY s), 0) AS p99
           FROM lag""",
        event_type,
    )
    assert row is not None
    return EventLag(
        count=int(row["n"]),
        first=float(row["first"]),
        p50=float(row["p50"]),
        p99=float(row["p99"]),
        last=float(row["last"]),
    )


async def count_events(conn: asyncpg.Connection, event_type: str, stream_ids: list[str] | None = None) -> int:
    """How many events of ``event_type`` there are (in ``stream_ids``, if given); for benches and checks."""
    if stream_ids is None:
        return int(await conn.fetchval("SELECT count(*) FROM domain_event WHERE event_type = $1", event_type))
    return int(
        await conn.fetchval(
            "SELECT count(*) FROM domain_event WHERE event_type = $1 AND stream_id = ANY($2::text[])",
            event_type,
            stream_ids,
        )
    )

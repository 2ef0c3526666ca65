"""Reads behind the domain metrics: a few aggregates of the read model and a tail
of the event log past a position, each one statement."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

# Decisions that end a review (the submission or resubmission before it started it).
REVIEW_ENDINGS = ("ApplicationApproved", "ApplicationRejected", "ChangesRequested")
REVIEW_STARTS = ("ApplicationSubmitted", "ApplicationResubmitted")
BILLING = ("ServiceBilled",)
ARREARS = (
    "ArrearsGraceStarted",
    "ArrearsRestricted",
    "ArrearsSuspended",
    "ArrearsFrozen",
    "ArrearsCleared",
    "NumberReclaimed",
)
TAILED = (*REVIEW_ENDINGS, *BILLING, *ARREARS)


async def registration_counts(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    """Registrations per lifecycle, stage, carrier and overdue: one aggregate over the read model."""
    rows: list[asyncpg.Record] = await conn.fetch(
        """SELECT lifecycle, stage, carrier_code, overdue, count(*) AS n
           FROM registration
           GROUP BY 1, 2, 3, 4"""
    )
    return rows


async def last_position(conn: asyncpg.Connection) -> int:
    value = await conn.fetchval("SELECT coalesce(max(position), 0) FROM domain_event")
    return int(value)


async def events_after(
    conn: asyncpg.Connection, after: int, types: Sequence[str], limit: int
) -> list[asyncpg.Record]:
    """Events of ``types`` past ``after``, oldest first, with the carrier and, for
    a decision, the seconds since the (re)submission it answered."""
    rows: list[asyncpg.Record] = await conn.fetch(
        """SELECT e.position, e.event_type, r.carrier_code,
                  extract(epoch FROM e.occurred_at - s.occurred_at)::float8 AS review_seconds
           FROM domain_event e
           LEFT JOIN registration r ON r.id = e.stream_id
           LEFT JOIN LATERAL (
               SELECT p.occurred_at FROM domain_event p
               WHERE p.stream_id = e.stream_id AND p.version < e.version
                 AND p.event_type = ANY($4::text[]) AND e.event_type = ANY($5::text[])
               ORDER BY p.version DESC LIMIT 1
           ) s ON true
           WHERE e.position > $1 AND e.event_type = ANY($2::text[])
           ORDER BY e.position
           LIMIT $3""",
        after,
        list(types),
        limit,
        list(REVIEW_STARTS),
        list(REVIEW_ENDINGS),
    )
    return rows


async def max_position_scanned(conn: asyncpg.Connection, after: int, limit: int) -> int | None:
    """The position the tail may move to when no tailed event came: the newest one
    within ``limit`` positions, so a quiet stretch of other events is skipped."""
    value = await conn.fetchval(
        "SELECT max(position) FROM domain_event WHERE position > $1 AND position <= $1 + $2", after, limit
    )
    return None if value is None else int(value)


async def import_progress(conn: asyncpg.Connection) -> asyncpg.Record | None:
    """Number imports: runs under way and the numbers they cover; numbers added
    by the finished ones (a run records its counts when it ends; the table holds
    one row per run, a handful)."""
    row: asyncpg.Record | None = await conn.fetchrow(
        """SELECT count(*) FILTER (WHERE finished_at IS NULL) AS running,
                  coalesce(sum(numbers_total) FILTER (WHERE finished_at IS NULL), 0) AS pending,
                  coalesce(sum(inserted) FILTER (WHERE finished_at IS NOT NULL), 0) AS inserted
           FROM number_import_run"""
    )
    return row

"""SQL for submitted applications (the API's own record of what it started)."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from api.repositories._sql import Where

# An application joined with its registration read-model row, which appears
# once the workflow has done its first step; until then the registration
# columns are NULL and the caller shows the application as just submitted.
_JOINED = """
    SELECT a.id, a.organisation_id, a.workflow_id, a.workflow_started_at,
           a.created_at, coalesce(r.updated_at, a.created_at) AS updated_at,
           coalesce(r.carrier_code, a.carrier_code) AS carrier_code,
           coalesce(r.company_name, a.company_name) AS company_name,
           r.credit_code, r.number, r.stage, r.status, r.waiting_for, r.next_deadline,
           coalesce(r.overdue, false) AS overdue, r.tier, r.min_monthly_spend_fen,
           r.first_prepayment_fen, coalesce(r.balance_fen, 0) AS balance_fen,
           coalesce(r.last_event_version, 0) AS last_event_version,
           coalesce(r.summary, '{}'::jsonb) AS summary,
           r.service_state, r.arrears_stage, r.realname_stage, r.realname_due_at,
           coalesce(r.lifecycle, 'submitted') AS lifecycle, r.next_deadline_kind,
           coalesce(r.refund_owed_fen, 0) AS refund_owed_fen
    FROM application a LEFT JOIN registration r ON r.id = a.id
"""


async def get(conn: asyncpg.Connection, application_id: str) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(_JOINED + " WHERE a.id = $1", application_id)
    return row


async def list_for_organisation(
    conn: asyncpg.Connection,
    organisation_id: str,
    *,
    stage: str | None,
    status: str | None,
    before: tuple[datetime, str] | None,
    limit: int,
) -> list[asyncpg.Record]:
    """Newest first; ``before`` is the (created_at, id) of the last row of the previous page."""
    where = Where().add("a.organisation_id = {}", organisation_id)
    if stage is not None:
        where.add("coalesce(r.stage, 'apply') = {}", stage)
    if status is not None:
        where.add("coalesce(r.status, 'submitted') = {}", status)
    if before is not None:
        where.add("(a.created_at, a.id) < ({}, {})", *before)
    rows: list[asyncpg.Record] = await conn.fetch(
        f"{_JOINED} {where.sql()} ORDER BY a.created_at DESC, a.id DESC LIMIT {int(limit)}", *where.args
    )
    return rows

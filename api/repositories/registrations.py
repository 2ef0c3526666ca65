"""SQL on the ``registration`` read model for dashboards and the review queue."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from api.repositories._sql import Where

_COLUMNS = """id, workflow_id, organisation_id, carrier_code, company_name, credit_code, number, stage,
    status, waiting_for, next_deadline, overdue, tier, min_monthly_spend_fen, first_prepayment_fen,
    balance_fen, last_event_version, summary, created_at, updated_at, service_state, arrears_stage,
    realname_stage, realname_due_at, lifecycle, next_deadline_kind, refund_owed_fen"""


@dataclass(frozen=True, slots=True)
class Filters:
    stage: str | None = None
    status: str | None = None
    lifecycle: str | None = None
    service_state: str | None = None
    carrier: str | None = None
    organisation_id: str | None = None
    overdue: bool | None = None
    created_from: datetime | None = None  # inclusive
    created_to: datetime | None = None  # exclusive

    def where(self) -> Where:
        where = Where()
        if self.stage is not None:
            where.add("stage = {}", self.stage)
        if self.status is not None:
            where.add("status = {}", self.status)
        if self.lifecycle is not None:
            where.add("lifecycle = {}", self.lifecycle)
        if self.service_state is not None:
            where.add("service_state = {}", self.service_state)
        if self.carrier is not None:
            where.add("carrier_code = {}", self.carrier)
        if self.organisation_id is not None:
            where.add("organisation_id = {}", self.organisation_id)
        if self.overdue is not None:
            where.add("overdue = {}", self.overdue)
        if self.created_from is not None:
            where.add("created_at >= {}", self.created_from)
        if self.created_to is not None:
            where.add("created_at < {}", self.created_to)
        return where


async def get(conn: asyncpg.Connection, registration_id: str) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM registration WHERE id = $1", registration_id
    )
    return row


async def list_page(
    conn: asyncpg.Connection,
    filters: Filters,
    *,
    after: tuple[datetime, str] | None,
    descending: bool,
    limit: int,
) -> list[asyncpg.Record]:
    """Keyset page on (created_at, id). Rows inserted while a client pages never
    shift the pages it has not read yet: the cursor is a position, not an offset."""
    where = filters.where()
    if after is not None:
        where.add("(created_at, id) < ({}, {})" if descending else "(created_at, id) > ({}, {})", *after)
    order = "DESC" if descending else "ASC"
    rows: list[asyncpg.Record] = await conn.fetch(
        f"SELECT {_COLUMNS} FROM registration {where.sql()} "
        f"ORDER BY created_at {order}, id {order} LIMIT {int(limit)}",
        *where.args,
    )
    return rows


async def counts(conn: asyncpg.Connection, filters: Filters) -> list[asyncpg.Record]:
    where = filters.where()
    rows: list[asyncpg.Record] = await conn.fetch(
        f"""SELECT stage, lifecycle, carrier_code, count(*) AS total,
                   count(*) FILTER (WHERE overdue) AS overdue
            FROM registration {where.sql()}
            GROUP BY stage, lifecycle, carrier_code ORDER BY stage, lifecycle, carrier_code""",
        *where.args,
    )
    return rows


async def review_queue(
    conn: asyncpg.Connection,
    *,
    carrier: str | None,
    organisation_id: str | None,
    after: tuple[bool, datetime, str] | None,
    limit: int,
) -> list[asyncpg.Record]:
    """Registrations waiting for an operator's decision: overdue first, then oldest.

    Spelled to match registration_review_queue_idx, so the page is read in index
    order. ``after`` is the (overdue, created_at, id) of the previous page's last row.
    """
    where = Where().add("waiting_for = 'operator_decision'")
    if carrier is not None:
        where.add("carrier_code = {}", carrier)
    if organisation_id is not None:
        where.add("organisation_id = {}", organisation_id)
    if after is not None:
        where.add("((NOT overdue), created_at, id) > ({}, {}, {})", not after[0], after[1], after[2])
    rows: list[asyncpg.Record] = await conn.fetch(
        f"SELECT {_COLUMNS} FROM registration {where.sql()} "
        f"ORDER BY (NOT overdue), created_at, id LIMIT {int(limit)}",
        *where.args,
    )
    return rows

"""SQL the console reads beyond the API's own queries: the staff work list,
claims, the dashboard's figures, numbers in service and a number's history."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from api.repositories._sql import Where

_REGISTRATION = """r.id, r.workflow_id, r.organisation_id, r.carrier_code, r.company_name, r.credit_code,
    r.number, r.stage, r.status, r.waiting_for, r.next_deadline, r.overdue, r.tier, r.min_monthly_spend_fen,
    r.first_prepayment_fen, r.balance_fen, r.last_event_version, r.summary, r.created_at, r.updated_at,
    r.service_state, r.arrears_stage, r.realname_stage, r.realname_due_at, r.lifecycle,
    r.next_deadline_kind, r.refund_owed_fen, r.paid_fen"""

STAFF_WORK = ("operator_decision", "verification")


@dataclass(frozen=True, slots=True)
class QueueFilters:
    carrier: str | None = None
    tier: str | None = None
    organisation_id: str | None = None
    waiting_for: str | None = None  # one of STAFF_WORK; None: both


def _work_where(filters: QueueFilters) -> Where:
    where = Where()
    if filters.waiting_for in STAFF_WORK:
        where.add("r.waiting_for = {}", filters.waiting_for)
    else:
        where.add("r.waiting_for IN ('operator_decision', 'verification')")
    if filters.carrier:
        where.add("r.carrier_code = {}", filters.carrier)
    if filters.tier:
        where.add("r.tier = {}", filters.tier)
    if filters.organisation_id:
        where.add("r.organisation_id = {}", filters.organisation_id)
    return where


async def work_list(conn: asyncpg.Connection, filters: QueueFilters, limit: int) -> list[asyncpg.Record]:
    """Registrations waiting for staff, oldest deadline first, each with its claim
    (who, since when, and whether it has lapsed after ``claim_seconds``).

    Spelled to match registration_staff_work_idx."""
    where = _work_where(filters)
    # Only what the queue shows: no summary (a JSON document per row to decode).
    rows: list[asyncpg.Record] = await conn.fetch(
        f"""SELECT r.id, r.organisation_id, r.carrier_code, r.company_name, r.number, r.stage, r.status,
                   r.waiting_for, r.next_deadline, r.overdue, r.tier, r.service_state, r.arrears_stage,
                   r.lifecycle, c.staff_id AS claimed_by, c.claimed_at,
                   s.display_name AS claimed_by_name,
                   extract(epoch FROM now() - c.claimed_at)::float8 AS claim_age_seconds,
                   extract(epoch FROM now() - r.next_deadline)::float8 AS overdue_seconds
            FROM registration r
            LEFT JOIN review_claim c ON c.application_id = r.id
            LEFT JOIN staff_account s ON s.id = c.staff_id
            {where.sql()}
            ORDER BY r.next_deadline NULLS LAST, r.id LIMIT {int(limit)}""",
        *where.args,
    )
    return rows


async def work_count(conn: asyncpg.Connection, filters: QueueFilters) -> int:
    """How many registrations the work list has in all (it shows the first ones)."""
    where = _work_where(filters)
    return int(await conn.fetchval(f"SELECT count(*) FROM registration r {where.sql()}", *where.args))


async def claim(conn: asyncpg.Connection, application_id: str, staff_id: str, lapse_seconds: float) -> str:
    """Claims the case for ``staff_id`` unless someone else holds a claim that has
    not lapsed; the holder's staff id afterwards."""
    holder: str = await conn.fetchval(
        """WITH taken AS (
               INSERT INTO review_claim (application_id, staff_id) VALUES ($1, $2)
               ON CONFLICT (application_id) DO UPDATE SET staff_id = EXCLUDED.staff_id, claimed_at = now()
               WHERE review_claim.staff_id = EXCLUDED.staff_id
                  OR review_claim.claimed_at < now() - make_interval(secs => $3)
               RETURNING staff_id)
           SELECT staff_id FROM taken
           UNION ALL SELECT staff_id FROM review_claim WHERE application_id = $1
           LIMIT 1""",
        application_id,
        staff_id,
        lapse_seconds,
    )
    return holder


async def unclaim(conn: asyncpg.Connection, application_id: str, staff_id: str | None) -> None:
    """Drops the claim (only ``staff_id``'s, unless None: any)."""
    await conn.execute(
        "DELETE FROM review_claim WHERE application_id = $1 AND ($2::text IS NULL OR staff_id = $2)",
        application_id,
        staff_id,
    )


async def claim_of(conn: asyncpg.Connection, application_id: str) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        """SELECT c.staff_id, c.claimed_at, s.display_name,
                  extract(epoch FROM now() - c.claimed_at)::float8 AS age_seconds
           FROM review_claim c JOIN staff_account s ON s.id = c.staff_id WHERE c.application_id = $1""",
        application_id,
    )
    return row


async def state_counts(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    """Counts per (lifecycle, stage, carrier), with how many are overdue."""
    rows: list[asyncpg.Record] = await conn.fetch(
        """SELECT lifecycle, stage, carrier_code,
                  count(*) AS total, count(*) FILTER (WHERE overdue) AS overdue
           FROM registration GROUP BY 1, 2, 3"""
    )
    return rows


async def applications_per_day(conn: asyncpg.Connection, days: int) -> list[asyncpg.Record]:
    """Applications received per day (China time) over the last ``days`` days, zeros included."""
    rows: list[asyncpg.Record] = await conn.fetch(
        """WITH d AS (
               SELECT generate_series((now() AT TIME ZONE 'Asia/Shanghai')::date - ($1 - 1),
                                      (now() AT TIME ZONE 'Asia/Shanghai')::date, '1 day')::date AS day)
           SELECT d.day, count(a.id) AS total
           FROM d LEFT JOIN application a
             ON a.created_at >= d.day::timestamp AT TIME ZONE 'Asia/Shanghai'
            AND a.created_at < (d.day + 1)::timestamp AT TIME ZONE 'Asia/Shanghai'
           GROUP BY d.day ORDER BY d.day""",
        days,
    )
    return rows


async def time_in_review(conn: asyncpg.Connection, days: int) -> asyncpg.Record:
    """Median and 90th percentile, in seconds, of the time from a submission (or
    resubmission) to the decision that answered it, over decisions of the last ``days`` days."""
    row: asyncpg.Record = await conn.fetchrow(
        """WITH decided AS (
               SELECT d.stream_id, d.occurred_at,
                      (SELECT max(s.occurred_at) FROM domain_event s
                        WHERE s.stream_id = d.stream_id AND s.version < d.version
                          AND s.event_type IN ('ApplicationSubmitted', 'ApplicationResubmitted')) AS since
               FROM domain_event d
               WHERE d.event_type IN ('ApplicationApproved', 'ApplicationRejected', 'ChangesRequested')
                 AND d.occurred_at >= now() - make_interval(days => $1))
           SELECT count(*) AS decisions,
                  percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM occurred_at - since)) AS p50,
                  percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM occurred_at - since)) AS p90
           FROM decided WHERE since IS NOT NULL""",
        days,
    )
    return row


async def overdue(conn: asyncpg.Connection, limit: int) -> list[asyncpg.Record]:
    """The SLA breaches: overdue registrations, the longest overdue first."""
    rows: list[asyncpg.Record] = await conn.fetch(
        f"""SELECT {_REGISTRATION}, extract(epoch FROM now() - r.next_deadline)::float8 AS overdue_seconds
            FROM registration r WHERE r.overdue
            ORDER BY r.next_deadline NULLS LAST, r.id LIMIT {int(limit)}"""
    )
    return rows


async def numbers_in_service(
    conn: asyncpg.Connection, *, number: str | None, organisation: str | None, state: str | None, limit: int
) -> list[asyncpg.Record]:
    """Registrations that reached ACTIVE (their number in service or after it), filtered."""
    where = Where().add("r.service_state IS NOT NULL")
    if number:
        where.add("r.number LIKE {}", f"%{number}%")
    if organisation:
        where.add("(r.organisation_id = {} OR r.company_name ILIKE {})", organisation, f"%{organisation}%")
    if state:
        where.add("r.service_state = {}", state)
    rows: list[asyncpg.Record] = await conn.fetch(
        f"""SELECT {_REGISTRATION} FROM registration r {where.sql()}
            ORDER BY r.number, r.created_at DESC LIMIT {int(limit)}""",
        *where.args,
    )
    return rows


async def number_history(conn: asyncpg.Connection, number: str, limit: int) -> list[asyncpg.Record]:
    """Every event of every registration that held ``number``, oldest first."""
    rows: list[asyncpg.Record] = await conn.fetch(
        """WITH holders AS (
               SELECT id, company_name, organisation_id FROM registration WHERE number = $1
               UNION
               SELECT r.id, r.company_name, r.organisation_id FROM number_inventory n
               JOIN registration r ON r.id IN (n.registration_id, n.previous_registration_id)
               WHERE n.number = $1)
           SELECT e.stream_id, e.version, e.event_type, e.actor, e.actor_role, e.reason, e.occurred_at,
                  h.company_name, h.organisation_id
           FROM holders h JOIN domain_event e ON e.stream_id = h.id
           ORDER BY e.occurred_at, e.stream_id, e.version LIMIT $2""",
        number,
        limit,
    )
    return rows


async def actor_names(conn: asyncpg.Connection, actors: set[str]) -> dict[str, str]:
    """Who each audit-trail actor is, as people know them: a staff member's name
    (``staff:<id>``), an API key's name and its organisation (``apikey:<id>``).
    Actors that are neither (``system``) or no longer exist are left out."""
    staff = [a.removeprefix("staff:") for a in actors if a.startswith("staff:")]
    keys = [a.removeprefix("apikey:") for a in actors if a.startswith("apikey:")]
    if not staff and not keys:
        return {}
    rows = await conn.fetch(
        """SELECT 'staff:' || id AS actor, display_name AS name FROM staff_account WHERE id = ANY($1::text[])
           UNION ALL
           SELECT 'apikey:' || id, name || coalesce(' · ' || organisation_id, '')
           FROM api_key WHERE id = ANY($2::text[])""",
        staff,
        keys,
    )
    return {row["actor"]: row["name"] for row in rows}

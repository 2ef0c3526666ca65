"""The lifecycle migration brings existing read-model rows over as the code now
writes them: its backfill agrees with domain.lifecycle for every kind of row,
and a service that has ended stops reading as active."""

from __future__ import annotations

import uuid
from pathlib import Path

import asyncpg
import pytest

from domain.lifecycle import lifecycle_of
from domain.service_rules import ClosureReason, ServiceState
from domain.timeline import TERMINAL_STATUSES, Stage, Status

MIGRATION = Path(__file__).parents[2] / "migrations" / "20261201700000_lifecycle.sql"

BEFORE_ACTIVATION = [
    (Stage.APPLY, Status.SUBMITTED, "system"),
    (Stage.AUDIT, Status.IN_REVIEW, "operator_decision"),
    (Stage.AUDIT, Status.CHANGES_REQUESTED, "resubmission"),
    (Stage.ALLOCATE, Status.AWAITING_PREPAYMENT, "prepayment"),
    (Stage.VERIFY, Status.AWAITING_VERIFICATION, "verification"),
    (Stage.ACTIVATE, Status.AWAITING_ACTIVATION, "activation_time"),
    (Stage.ACTIVATE, Status.PROVISIONING, "carrier"),
    *((Stage.CLOSED, status, "nothing") for status in sorted(TERMINAL_STATUSES)),
]
# (service_state, arrears_stage) as the service left rows before the migration:
# stage and status stayed active/active whatever happened.
IN_SERVICE = [
    ("active", "none"),
    ("restricted", "restricted"),
    ("suspended", "none"),
    ("frozen", "frozen"),
    ("quarantined", "none"),  # terminated
    ("quarantined", "reclaimed"),
    ("released", "none"),
    ("released", "reclaimed"),
]


def backfill() -> str:
    text = MIGRATION.read_text()
    return text[text.index("-- backfill:begin") : text.index("-- backfill:end")]


async def _insert(
    db: asyncpg.Connection, stage: str, status: str, waiting: str, state: str | None, arrears: str | None
) -> str:
    reg_id = f"app_mig_{uuid.uuid4().hex[:20]}"
    await db.execute(
        """INSERT INTO registration (id, workflow_id, organisation_id, carrier_code, company_name,
               credit_code, stage, status, waiting_for, next_deadline, service_state, arrears_stage,
               realname_stage, realname_due_at, lifecycle, created_at, updated_at)
           VALUES ($1, $1, 'org_mig', 'china_unicom', 'Co', '91440300MA5F1B2C3F', $2, $3, $4, now(), $5, $6,
                   CASE WHEN $5::text IS NULL THEN NULL ELSE 'current' END, now() + interval '1 year',
                   'submitted', now(), now())""",
        reg_id,
        stage,
        status,
        waiting,
        state,
        arrears,
    )
    return reg_id


async def test_the_backfill_agrees_with_the_code(db: asyncpg.Connection) -> None:
    expected: dict[str, tuple[str, str, str]] = {}
    for stage, status, waiting in BEFORE_ACTIVATION:
        reg_id = await _insert(db, stage.value, status.value, waiting, None, None)
        expected[reg_id] = (stage.value, status.value, lifecycle_of(stage, status).value)
    for state, arrears in IN_SERVICE:
        reg_id = await _insert(db, "active", "active", "nothing", state, arrears)
        closure = ClosureReason.RECLAIMED if arrears == "reclaimed" else ClosureReason.TERMINATED
        ended = state in ("quarantined", "released")
        stage, status = (Stage.CLOSED, Status(closure.value)) if ended else (Stage.ACTIVE, Status.ACTIVE)
        expected[reg_id] = (
            stage.value,
            status.value,
            lifecycle_of(stage, status, ServiceState(state), closure if ended else None).value,
        )

    await db.execute(backfill())

    rows = await db.fetch(
        """SELECT id, stage, status, lifecycle, waiting_for, service_state, next_deadline_kind
           FROM registration WHERE id = ANY($1::text[])""",
        list(expected),
    )
    got = {r["id"]: (r["stage"], r["status"], r["lifecycle"]) for r in rows}
    assert got == expected
    # No row of a number in quarantine or released is left active.
    assert not [r for r in got.values() if r[0] == "active" and r[2] in ("terminated", "reclaimed", "closed")]
    # What each deadline is for: what the registration waits for, or the service's.
    kinds = {(r["waiting_for"], r["service_state"], r["next_deadline_kind"]) for r in rows}
    assert {
        ("operator_decision", None, "operator_decision"),
        ("prepayment", None, "prepayment"),
        ("activation_time", None, "activation_time"),
        ("carrier", None, None),
        ("nothing", "active", "realname"),
        ("nothing", "restricted", "arrears"),
        ("nothing", "quarantined", "quarantine_end"),
    } <= kinds


@pytest.mark.parametrize("state", ["quarantined", "released"])
async def test_a_service_that_ended_before_the_migration_is_closed(
    db: asyncpg.Connection, state: str
) -> None:
    reg_id = await _insert(db, "active", "active", "nothing", state, "none")
    await db.execute(backfill())
    row = await db.fetchrow("SELECT stage, status, lifecycle FROM registration WHERE id = $1", reg_id)
    assert tuple(row) == ("closed", "terminated", "terminated" if state == "quarantined" else "closed")

"""The append-only event log (``domain_event``) and the registration read model.

Callers append an event and save the read-model row in one transaction, so a
dashboard never shows a state the log does not explain. Appends are idempotent
by ``event_id``: a retried activity, or one re-run after a worker died after
its commit, finds its own event already there and changes nothing.
"""

from __future__ import annotations

import uuid

import asyncpg

from domain.lifecycle import lifecycle_of
from domain.service_rules import ArrearsStage, RealnameStage, ServiceState
from domain.timeline import Event, EventType, RegistrationState, Stage


class ConcurrencyConflict(Exception):
    """Another writer already appended this version of the stream."""

    def __init__(self, stream_id: str, version: int) -> None:
        self.stream_id = stream_id
        self.version = version
        super().__init__(f"stream {stream_id!r} already has a version {version} from another writer")


_COLUMNS = """stream_id, version, event_id::text AS event_id, event_type, actor, actor_role, reason,
    correlation_id, occurred_at, payload"""


def _event(row: asyncpg.Record) -> Event:
    return Event.model_validate(dict(row))


async def find_event(conn: asyncpg.Connection, event_id: str) -> Event | None:
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM domain_event WHERE event_id = $1", uuid.UUID(event_id))
    return _event(row) if row else None


async def registration_events_after(conn: asyncpg.Connection, stream_id: str, version: int) -> list[Event]:
    """The registration's own events after ``version``, oldest first (the
    service's, appended after ACTIVE, are left out)."""
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM domain_event WHERE stream_id = $1 AND version > $2 ORDER BY version",
        stream_id,
        version,
    )
    return [_event(r) for r in rows if r["event_type"] in _REGISTRATION_EVENT_TYPES]


async def append(conn: asyncpg.Connection, event: Event) -> bool:
    """Append ``event``. False when an event with its id is already stored (a
    retry: nothing written); ConcurrencyConflict when its version is taken by a
    different event, which also aborts the caller's transaction: a step whose
    event cannot be appended must not happen at all."""
    try:
        row = await conn.fetchrow(
            """INSERT INTO domain_event (stream_id, version, event_id, event_type, actor, actor_role,
                   reason, correlation_id, payload, occurred_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
               ON CONFLICT (event_id) DO NOTHING
               RETURNING position""",
            *_event_args(event),
        )
    except asyncpg.UniqueViolationError as exc:
        raise ConcurrencyConflict(event.stream_id, event.version) from exc
    return row is not None


async def append_and_save(
    conn: asyncpg.Connection, event: Event, state: RegistrationState, workflow_id: str
) -> bool:
    """``append`` and ``save_registration`` in one statement (one round trip, atomic
    on its own): the read-model row is written only if the event was. False when
    the event id is already stored."""
    try:
        appended = await conn.fetchval(
            f"""WITH ev AS (
                    INSERT INTO domain_event (stream_id, version, event_id, event_type, actor, actor_role,
                        reason, correlation_id, payload, occurred_at)
                    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                    ON CONFLICT (event_id) DO NOTHING
                    RETURNING 1
                ), rm AS (
                    {_upsert_registration(11, only_if="EXISTS (SELECT 1 FROM ev)")}
                    RETURNING 1
                )
                SELECT count(*) FROM ev""",
            *_event_args(event),
            *_registration_args(state, workflow_id),
        )
    except asyncpg.UniqueViolationError as exc:
        raise ConcurrencyConflict(event.stream_id, event.version) from exc
    return bool(appended)


# The registration's own event types. From ACTIVE on, the service workflow
# appends its events (billing, arrears...) to the same stream; those are not
# part of the registration's fold.
_REGISTRATION_EVENT_TYPES = frozenset(t.value for t in EventType)


async def load_stream(conn: asyncpg.Connection, stream_id: str) -> list[Event]:
    """The registration's events, from application to ACTIVE or to its closing event."""
    registration, _ = await load_stream_and_service_events(conn, stream_id)
    return registration


async def load_stream_and_service_events(
    conn: asyncpg.Connection, stream_id: str
) -> tuple[list[Event], list[asyncpg.Record]]:
    """The whole stream in one read: the registration's events, and the rows the
    service appended after ACTIVE (event types of its own), each oldest first."""
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM domain_event WHERE stream_id = $1 ORDER BY version", stream_id
    )
    registration = [_event(r) for r in rows if r["event_type"] in _REGISTRATION_EVENT_TYPES]
    service = [r for r in rows if r["event_type"] not in _REGISTRATION_EVENT_TYPES]
    return registration, service


async def save_registration(conn: asyncpg.Connection, state: RegistrationState, workflow_id: str) -> None:
    """Upsert the read-model row for ``state``.

    A row at a later version is never overwritten by an earlier one. A carrier
    unknown to the ``carrier`` table (an application refused for naming one) gets
    no row: the refusal is still in the event log.
    """
    await conn.execute(_upsert_registration(1), *_registration_args(state, workflow_id))


def _upsert_registration(first: int, only_if: str = "true") -> str:
    """The read-model upsert with its 27 parameters numbered from ``first`` (see
    ``_registration_args``); ``only_if`` is a further condition for writing at all."""
    params = ", ".join(f"${n}" for n in range(first, first + 27))
    return _UPSERT_REGISTRATION.format(params=params, only_if=only_if, carrier=f"${first + 3}")


_UPSERT_REGISTRATION = """INSERT INTO registration (id, workflow_id, organisation_id, carrier_code,
        company_name, credit_code, number, stage, status, waiting_for, next_deadline, overdue, tier,
        min_monthly_spend_fen, first_prepayment_fen, balance_fen, last_event_version, summary,
        created_at, updated_at, service_state, arrears_stage, realname_stage, realname_due_at,
        lifecycle, next_deadline_kind, refund_owed_fen)
    SELECT {params}
    WHERE {only_if} AND EXISTS (SELECT 1 FROM carrier WHERE code = {carrier})
    ON CONFLICT (id) DO UPDATE SET
        company_name = EXCLUDED.company_name,
        number = EXCLUDED.number,
        stage = EXCLUDED.stage,
        status = EXCLUDED.status,
        waiting_for = EXCLUDED.waiting_for,
        next_deadline = EXCLUDED.next_deadline,
        overdue = EXCLUDED.overdue,
        tier = EXCLUDED.tier,
        min_monthly_spend_fen = EXCLUDED.min_monthly_spend_fen,
        first_prepayment_fen = EXCLUDED.first_prepayment_fen,
        balance_fen = EXCLUDED.balance_fen,
        last_event_version = EXCLUDED.last_event_version,
        summary = EXCLUDED.summary,
        updated_at = EXCLUDED.updated_at,
        service_state = EXCLUDED.service_state,
        arrears_stage = EXCLUDED.arrears_stage,
        realname_stage = EXCLUDED.realname_stage,
        realname_due_at = EXCLUDED.realname_due_at,
        lifecycle = EXCLUDED.lifecycle,
        next_deadline_kind = EXCLUDED.next_deadline_kind,
        refund_owed_fen = EXCLUDED.refund_owed_fen
    WHERE registration.last_event_version < EXCLUDED.last_event_version"""


def _registration_args(state: RegistrationState, workflow_id: str) -> tuple[object, ...]:
    return (
        state.application_id,
        workflow_id,
        state.organisation_id,
        state.carrier,
        state.company_name,
        state.credit_code,
        state.number,
        state.stage.value,
        state.status.value,
        state.waiting_for.value,
        state.next_deadline,
        state.overdue,
        state.tier,
        state.min_monthly_spend_fen,
        state.first_prepayment_fen,
        state.paid_fen,
        state.version,
        _summary(state),
        state.created_at,
        state.updated_at,
        *_opening_service_view(state),
        lifecycle_of(state.stage, state.status).value,
        kind.value if (kind := state.next_deadline_kind) is not None else None,
        state.refund_owed_fen,
    )


def _opening_service_view(state: RegistrationState) -> tuple[object, ...]:
    """The service columns as the service starts at ACTIVE (in service, paid up,
    real-name current); from its first change on the service writes them itself
    (activities/service.py). Empty before ACTIVE and on every other ending."""
    if state.stage is not Stage.ACTIVE:
        return (None, None, None, None)
    return (
        ServiceState.ACTIVE.value,
        ArrearsStage.NONE.value,
        RealnameStage.CURRENT.value,
        state.realname_due_at,
    )


def _event_args(event: Event) -> tuple[object, ...]:
    return (
        event.stream_id,
        event.version,
        uuid.UUID(event.event_id),
        event.event_type.value,
        event.actor,
        event.actor_role.value,
        event.reason,
        event.correlation_id,
        event.payload,
        event.occurred_at,
    )


def _summary(state: RegistrationState) -> dict[str, object]:
    # Already masked by the workflow (domain.masking); the rest are facts a
    # listing shows without reading the event log.
    summary: dict[str, object] = dict(state.summary)
    if state.change_request is not None:
        summary["change_request"] = state.change_request.model_dump(mode="json")
    if state.rejection_code is not None:
        summary["rejection"] = {"reason_code": state.rejection_code, "reason": state.rejection_reason}
    if state.problems:
        summary["problems"] = list(state.problems)
    if state.activation_at is not None:
        summary["activation_at"] = state.activation_at.isoformat()
    if state.activated_at is not None:
        summary["activated_at"] = state.activated_at.isoformat()
    return summary


async def get_registration(conn: asyncpg.Connection, registration_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM registration WHERE id = $1", registration_id)

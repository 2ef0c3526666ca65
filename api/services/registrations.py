"""Reading registrations: one, lists, counts, the review queue and timelines.

Everything here reads the ``registration`` read model (written by the workflow's
activities in the same transaction as each event) or the API's own
``application`` rows; nothing waits for Temporal, so these routes stay fast and
keep working while Temporal is down.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from datetime import datetime
from typing import Any

import asyncpg

from activities.repositories import events as event_store
from api.auth import Principal, Role
from api.errors import InvalidInput, NotFound, field_error
from api.repositories import applications, forms, registrations
from api.repositories.registrations import Filters
from api.schemas.common import Page, decode_cursor, encode_cursor
from api.schemas.registrations import (
    ChangeRequest,
    DetailsChangeShown,
    Fees,
    LifecycleCarrierCount,
    RefusalProblem,
    Registration,
    RegistrationStats,
    Rejection,
    StageCarrierCount,
    Timeline,
    TimelineEntry,
)
from api.services import personal_data
from domain.lifecycle import NUMBER_IN_SERVICE, Lifecycle, closure_after, lifecycle_of, service_stage_status
from domain.service_rules import ArrearsStage, ChangeKind, ClosureReason, RealnameStage, ServiceState
from domain.timeline import Event, NextDeadlineKind, timeline
from workflows.contracts import RegistrationStatus, Stage, Status, WaitingFor
from workflows.service_contracts import ServiceStatus


def display_number(number: str | None) -> str | None:
    if not number:
        return None
    return f"{number[:3]}-{number[3:6]}-{number[6:]}"


def _dt(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def from_row(row: Mapping[str, Any], *, staff: bool) -> Registration:
    """A Registration from a read-model row, or from an application row whose
    read-model row does not exist yet (the workflow has not finished its first step)."""
    summary: dict[str, Any] = dict(row["summary"] or {})
    change = summary.get("change_request")
    rejection = summary.get("rejection")
    fees = (
        Fees(
            tier=row["tier"],
            min_monthly_spend_fen=row["min_monthly_spend_fen"],
            first_prepayment_fen=row["first_prepayment_fen"],
        )
        if row["tier"] is not None
        else None
    )
    stage = row["stage"] or Stage.APPLY
    masked = {
        k: v
        for k, v in summary.items()
        if k not in ("change_request", "rejection", "problems", "activation_at", "activated_at")
    }
    # Built without validation: every value comes typed from our own tables
    # (enums are converted here), and validating 20+ fields per row was most of
    # the cost of a dashboard page.
    return Registration.model_construct(
        id=row["id"],
        organisation_id=row["organisation_id"],
        carrier=row["carrier_code"],
        company_name=row["company_name"],
        number=row["number"].strip() if row["number"] else None,
        number_display=display_number(row["number"]),
        stage=Stage(stage),
        status=Status(row["status"] or Status.SUBMITTED),
        lifecycle=Lifecycle(row["lifecycle"]),
        waiting_for=WaitingFor(row["waiting_for"] or WaitingFor.SYSTEM),
        next_deadline=row["next_deadline"],
        next_deadline_kind=NextDeadlineKind(row["next_deadline_kind"]) if row["next_deadline_kind"] else None,
        deadline_provisional=bool(row.get("deadline_provisional")),
        overdue=row["overdue"],
        fees=fees,
        paid_fen=row["paid_fen"],
        refund_owed_fen=row["refund_owed_fen"],
        change_request=ChangeRequest(
            fields=list(change.get("fields", [])),
            documents=list(change.get("documents", [])),
            reason=change.get("reason"),
            requested_at=_dt(change.get("requested_at")),
            resubmit_by=_dt(change.get("resubmit_by")),
        )
        if isinstance(change, dict)
        else None,
        rejection=Rejection(reason_code=rejection["reason_code"], reason=rejection.get("reason"))
        if isinstance(rejection, dict) and rejection.get("reason_code")
        else None,
        problems=[RefusalProblem(**p) for p in summary.get("problems", []) if isinstance(p, dict)],
        activation_at=_dt(summary.get("activation_at")),
        activated_at=_dt(summary.get("activated_at")),
        version=row["last_event_version"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        summary=masked if staff else None,
        **_service_fields(row),
    )


def _service_fields(row: Mapping[str, Any]) -> dict[str, Any]:
    """The service columns of a read-model row, set from activation on; nothing
    before, so that the fields stay null."""
    state = row.get("service_state")
    if state is None:
        return {}
    return {
        "service_state": ServiceState(state),
        "balance_fen": row["balance_fen"],
        "arrears_stage": ArrearsStage(row["arrears_stage"]),
        "realname_stage": RealnameStage(row["realname_stage"]),
        "realname_due_at": row["realname_due_at"],
    }


def from_status(
    status: RegistrationStatus, application: Mapping[str, Any], *, staff: bool = False
) -> Registration:
    """A Registration from the workflow's own answer (Update result or Query),
    completed with what only the application row knows."""
    return Registration(
        id=status.application_id,
        organisation_id=status.organisation_id,
        carrier=status.carrier,
        company_name=application["company_name"],
        number=status.number,
        number_display=display_number(status.number),
        stage=status.stage,
        status=status.status,
        lifecycle=lifecycle_of(
            status.stage,
            status.status,
            status.service_state if isinstance(status, ServiceStatus) else None,
            status.closure.reason if isinstance(status, ServiceStatus) and status.closure else None,
        ),
        waiting_for=status.waiting_for,
        next_deadline=status.next_deadline,
        next_deadline_kind=status.next_deadline_kind,
        deadline_provisional=status.deadline_provisional,
        overdue=status.overdue,
        fees=Fees(**status.fees.model_dump()) if status.fees else None,
        paid_fen=status.paid_fen,
        refund_owed_fen=status.refund_owed_fen,
        change_request=ChangeRequest(**status.change_request.model_dump()) if status.change_request else None,
        rejection=Rejection(**status.rejection.model_dump()) if status.rejection else None,
        problems=[RefusalProblem(**p.model_dump()) for p in status.problems],
        activation_at=status.activation_at,
        activated_at=status.activated_at,
        version=status.last_event_version,
        created_at=application["created_at"],
        updated_at=status.updated_at or application["updated_at"],
        summary=dict(application["summary"] or {}) if staff else None,
        **(
            {
                "service_state": status.service_state,
                "balance_fen": status.balance_fen,
                "arrears_stage": status.arrears_stage,
                "realname_stage": status.realname_stage,
                "realname_due_at": status.realname_due_at,
            }
            if isinstance(status, ServiceStatus)
            else {}
        ),
    )


async def get_application_row(
    conn: asyncpg.Connection, principal: Principal, application_id: str
) -> asyncpg.Record:
    """The application, if the caller may see it. Another organisation's
    application is 404, exactly like one that does not exist, so ids reveal nothing."""
    row = await applications.get(conn, application_id)
    if row is None or (
        principal.role is Role.APPLICANT and row["organisation_id"] != principal.organisation_id
    ):
        raise NotFound(f"No application {application_id!r}")
    return row


async def get_registration(
    conn: asyncpg.Connection, principal: Principal, application_id: str
) -> Registration:
    row = await get_application_row(conn, principal, application_id)
    return from_row(row, staff=principal.role is not Role.APPLICANT)


async def list_own(
    conn: asyncpg.Connection,
    principal: Principal,
    *,
    stage: str | None,
    status: str | None,
    cursor: str | None,
    limit: int,
) -> Page[Registration]:
    before = None
    bound = [stage, status]
    if cursor:
        created, ident = decode_cursor(cursor, "own", 2, bound)
        before = (_cursor_time(created), str(ident))
    rows = await applications.list_for_organisation(
        conn, principal.require_organisation(), stage=stage, status=status, before=before, limit=limit + 1
    )
    items = [from_row(r, staff=False) for r in rows[:limit]]
    next_cursor = (
        encode_cursor("own", [rows[limit - 1]["created_at"].isoformat(), rows[limit - 1]["id"]], bound)
        if len(rows) > limit
        else None
    )
    return Page[Registration](items=items, next_cursor=next_cursor)


def _cursor_time(value: Any) -> datetime:
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise InvalidInput(
            errors=[
                field_error(
                    "cursor", "invalid_cursor", "Pass back a next_cursor from this listing unchanged."
                )
            ]
        )
    return parsed


async def list_all(
    conn: asyncpg.Connection,
    filters: Filters,
    *,
    order: str,
    cursor: str | None,
    limit: int,
) -> Page[Registration]:
    descending = order == "desc"
    kind = f"reg-{order}"
    after = None
    bound = asdict(filters)
    if cursor:
        created, ident = decode_cursor(cursor, kind, 2, bound)
        after = (_cursor_time(created), str(ident))
    rows = await registrations.list_page(conn, filters, after=after, descending=descending, limit=limit + 1)
    items = [from_row(r, staff=True) for r in rows[:limit]]
    next_cursor = (
        encode_cursor(kind, [rows[limit - 1]["created_at"].isoformat(), rows[limit - 1]["id"]], bound)
        if len(rows) > limit
        else None
    )
    return Page[Registration](items=items, next_cursor=next_cursor)


async def stats(conn: asyncpg.Connection, filters: Filters) -> RegistrationStats:
    rows = await registrations.counts(conn, filters)
    by_stage: dict[str, int] = {}
    by_carrier: dict[str, int] = {}
    by_lifecycle: dict[str, int] = {}
    stage_carrier: dict[tuple[str, str], list[int]] = {}
    lifecycle_carrier: dict[tuple[str, str], list[int]] = {}
    for r in rows:
        by_stage[r["stage"]] = by_stage.get(r["stage"], 0) + r["total"]
        by_carrier[r["carrier_code"]] = by_carrier.get(r["carrier_code"], 0) + r["total"]
        by_lifecycle[r["lifecycle"]] = by_lifecycle.get(r["lifecycle"], 0) + r["total"]
        for key, into in (
            ((r["stage"], r["carrier_code"]), stage_carrier),
            ((r["lifecycle"], r["carrier_code"]), lifecycle_carrier),
        ):
            counted = into.setdefault(key, [0, 0])
            counted[0] += r["total"]
            counted[1] += r["overdue"]
    return RegistrationStats(
        total=sum(r["total"] for r in rows),
        overdue=sum(r["overdue"] for r in rows),
        by_stage=by_stage,
        by_carrier=by_carrier,
        by_stage_and_carrier=[
            StageCarrierCount(stage=Stage(stage), carrier=carrier, total=total, overdue=overdue)
            for (stage, carrier), (total, overdue) in sorted(stage_carrier.items())
        ],
        by_lifecycle=by_lifecycle,
        by_lifecycle_and_carrier=[
            LifecycleCarrierCount(
                lifecycle=Lifecycle(lifecycle), carrier=carrier, total=total, overdue=overdue
            )
            for (lifecycle, carrier), (total, overdue) in sorted(lifecycle_carrier.items())
        ],
        in_service=sum(
            n for lifecycle, n in by_lifecycle.items() if Lifecycle(lifecycle) in NUMBER_IN_SERVICE
        ),
    )


async def review_queue(
    conn: asyncpg.Connection,
    *,
    carrier: str | None,
    organisation_id: str | None,
    cursor: str | None,
    limit: int,
) -> Page[Registration]:
    after = None
    bound = [carrier, organisation_id]
    if cursor:
        overdue, created, ident = decode_cursor(cursor, "queue", 3, bound)
        after = (bool(overdue), _cursor_time(created), str(ident))
    rows = await registrations.review_queue(
        conn, carrier=carrier, organisation_id=organisation_id, after=after, limit=limit + 1
    )
    items = [from_row(r, staff=True) for r in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = encode_cursor(
            "queue", [last["overdue"], last["created_at"].isoformat(), last["id"]], bound
        )
    return Page[Registration](items=items, next_cursor=next_cursor)


async def get_timeline(conn: asyncpg.Connection, principal: Principal, application_id: str) -> Timeline:
    await get_application_row(conn, principal, application_id)
    events, service_rows = await event_store.load_stream_and_service_events(conn, application_id)
    staff = principal.role is not Role.APPLICANT
    entries = timeline_entries(events, service_rows, staff=staff)
    if staff:
        # Reveals of personal data (the console) are in a stream of their own, shown
        # to staff by time. Never to the applicant: they carry an operator's internal reason.
        accesses = await forms.stream(conn, personal_data.access_stream(application_id))
        entries = _merge_accesses(entries, accesses)
    return Timeline(application_id=application_id, entries=entries)


def timeline_entries(
    events: list[Event], service_rows: list[asyncpg.Record], *, staff: bool
) -> list[TimelineEntry]:
    """A stream's events as the timeline shows them (to staff, or masked for
    applicants); webhooks send the same entries (api/services/webhook_payloads.py)."""
    entries = [
        TimelineEntry(
            version=e.version,
            occurred_at=e.occurred_at,
            event_type=e.event_type.value,
            actor=_shown_actor(e.actor, e.actor_role.value, staff),
            actor_role=e.actor_role.value,
            reason=e.reason,
            reason_code=e.reason_code,
            stage=Stage(e.stage.value),
            status=Status(e.status.value),
            lifecycle=lifecycle_of(e.stage, e.status),
            next_deadline=e.next_deadline,
            next_deadline_kind=e.next_deadline_kind,
            deadline_provisional=e.deadline_provisional,
            overdue=e.overdue,
            service_state=ServiceState.ACTIVE if e.status.value == Status.ACTIVE else None,
            refund_owed_fen=e.refund_owed_fen,
        )
        for e in timeline(events)
    ]
    closure: ClosureReason | None = None
    for row in service_rows:
        closure = closure_after(row["event_type"], closure)
        entries.append(_service_entry(row, staff, closure))
    return entries


def _merge_accesses(entries: list[TimelineEntry], accesses: list[asyncpg.Record]) -> list[TimelineEntry]:
    """The registration's entries with each reveal of its personal data placed by
    time; a reveal changes nothing, so it shows the state of the entry before it.
    It has no version: versions number the registration's stream alone."""
    merged = list(entries)
    for row in accesses:
        at = row["occurred_at"]
        index = next((i for i, e in enumerate(merged) if e.occurred_at > at), len(merged))
        before = merged[index - 1] if index else None
        field = (row["payload"] or {}).get("field")
        merged.insert(
            index,
            TimelineEntry(
                source="access_log",
                version=None,
                occurred_at=at,
                event_type=row["event_type"],
                actor=row["actor"],
                actor_role=row["actor_role"],
                reason=f"{field}: {row['reason']}" if field else row["reason"],
                stage=before.stage if before else Stage.APPLY,
                status=before.status if before else Status.SUBMITTED,
                lifecycle=before.lifecycle if before else Lifecycle.SUBMITTED,
                next_deadline=before.next_deadline if before else None,
                next_deadline_kind=before.next_deadline_kind if before else None,
                deadline_provisional=before.deadline_provisional if before else False,
                overdue=before.overdue if before else False,
                service_state=before.service_state if before else None,
            ),
        )
    return merged


def _shown_actor(actor: str, role: str, staff: bool) -> str:
    # Applicants learn that an operator acted and why, not which operator.
    return actor if staff or role == "applicant" else role


def _service_entry(row: asyncpg.Record, staff: bool, closure: ClosureReason | None) -> TimelineEntry:
    """An event of the service after ACTIVE: the number's service state moves;
    once the service has ended (``closure``) the registration is closed."""
    payload = row["payload"] or {}
    deadline = payload.get("next_deadline")
    kind = payload.get("next_deadline_kind")
    state = ServiceState(payload["state_after"]) if payload.get("state_after") else None
    stage, status = service_stage_status(closure)
    return TimelineEntry(
        version=row["version"],
        occurred_at=row["occurred_at"],
        event_type=row["event_type"],
        actor=_shown_actor(row["actor"], row["actor_role"], staff),
        actor_role=row["actor_role"],
        reason=row["reason"],
        stage=stage,
        status=status,
        lifecycle=lifecycle_of(stage, status, state, closure),
        next_deadline=datetime.fromisoformat(deadline) if deadline else None,
        next_deadline_kind=NextDeadlineKind(kind) if kind else None,
        overdue=bool(payload.get("overdue", False)),
        service_state=state,
        details_change=DetailsChangeShown(
            fields=list(payload.get("fields", [])),
            values=dict(payload.get("values") or {}),
            changed_at=datetime.fromisoformat(payload["changed_at"]),
            due_by=datetime.fromisoformat(payload["due_by"]),
            late=bool(payload.get("late")),
        )
        if row["event_type"] == ChangeKind.DETAILS_CHANGE_REPORTED.value and "due_by" in payload
        else None,
    )

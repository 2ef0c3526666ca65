"""The service workflow's one activity: carry out one change of the service.

Each ``Change`` (domain.service_rules) is one call of ``apply_change``:

1. If the change moved the service state, the carrier is told the new state,
   with the event id as its request id (idempotent at the carrier). This comes
   first and outside the transaction: a slow carrier must not hold a database
   connection, and if the database step then fails the retry repeats a call the
   carrier already knows.
2. One transaction: the number's inventory status follows the state (service
   status, quarantine, or release), the event is appended to the registration's
   stream, and the read-model row is updated. All or nothing.

Exactly once: the workflow derives the event id from the change's sequence
number, so a retried call (or one re-run after a worker died past its commit)
finds the event already stored and does nothing. The activity runs as a local
activity for what the deadlines bring without a carrier call (billing: the
frequent case), and as a regular activity, with server-side backoff, when the
carrier is called or an Update asked for the change (see ServiceFlow._commit).

A carrier's permanent refusal does not stop the change: our books follow the
decision (the number is suspended for us whatever the carrier says), the event
records the refusal and it is logged as an error for an operator to reconcile.
Transient failures are retried without limit; so are inventory conflicts,
which only a data repair fixes, and retrying keeps them visible in Temporal as a
pending activity instead of losing the change.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

import asyncpg
from pydantic import BaseModel, ConfigDict, Field
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.repositories import inventory
from activities.repositories import service as service_repo
from activities.service_carrier import (
    CarrierRejected,
    CarrierUnavailable,
    ServiceCarrierGateway,
    ServiceChangeRequest,
)
from app.settings import Settings
from domain.details import DetailValue
from domain.lifecycle import lifecycle_of, service_stage_status
from domain.service_rules import (
    IN_SERVICE,
    ArrearsStage,
    Change,
    ChangeKind,
    ClosureReason,
    DeadlineKind,
    RealnameStage,
    ServiceState,
)

log = logging.getLogger("activities.service")

ERR_CARRIER_UNAVAILABLE = "CarrierUnavailable"
ERR_INVENTORY = "InventoryError"
ERR_EVENT_MISMATCH = "EventMismatch"

_MODEL = ConfigDict(frozen=True)


class ServiceView(BaseModel):
    """The read-model columns after the change."""

    model_config = _MODEL

    service_state: ServiceState
    arrears_stage: ArrearsStage
    realname_stage: RealnameStage
    realname_due_at: datetime | None
    balance_fen: int
    next_deadline: datetime | None
    overdue: bool
    next_deadline_kind: DeadlineKind | None = None
    # How the service ended (None while it runs): closes the registration.
    closure: ClosureReason | None = None
    # The holder's current details (masked), for the read model's summary.
    details: dict[str, DetailValue] = Field(default_factory=dict)


class ApplyServiceChange(BaseModel):
    model_config = _MODEL

    application_id: str
    number: str
    carrier: str
    correlation_id: str
    event_id: str
    change: Change
    view: ServiceView


class ServiceChangeResult(BaseModel):
    model_config = _MODEL

    version: int | None = None  # the event's version in the stream; None for a duplicate
    duplicate: bool = False
    carrier_refused: str | None = None
    number_released: bool | None = None  # for the release at the end of quarantine


class _Duplicate(Exception):
    """The event was appended by a concurrent run of the same call: undo ours."""


class ServiceActivities:
    def __init__(self, pool: asyncpg.Pool, settings: Settings, carrier: ServiceCarrierGateway) -> None:
        self._pool = pool
        self._settings = settings
        self._carrier = carrier

    def callables(self) -> list[Callable[..., Any]]:
        return [self.apply_change]

    @activity.defn(name="service.apply_change")
    async def apply_change(self, cmd: ApplyServiceChange) -> ServiceChangeResult:
        async with self._pool.acquire() as conn:
            stored = await service_repo.stored_event_type(conn, cmd.event_id)
            if stored is not None:
                return self._already_recorded(cmd, stored)
            if cmd.change.carrier_action is not None:
                await self._check_holder(conn, cmd)
        change = cmd.change
        refused = await self._tell_carrier(cmd)
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                released = await self._follow_in_inventory(conn, cmd)
                version = await service_repo.append_event(
                    conn,
                    stream_id=cmd.application_id,
                    event_id=cmd.event_id,
                    event_type=change.kind.value,
                    actor=change.actor_id,
                    actor_role=change.actor_role,
                    reason=change.reason,
                    correlation_id=cmd.correlation_id,
                    payload=_payload(cmd, refused, released),
                    occurred_at=change.at,
                )
                if version is None:
                    raise _Duplicate
                v = cmd.view
                if change.kind is ChangeKind.DETAILS_CHANGE_REPORTED and v.details:
                    await service_repo.update_current_details(conn, cmd.application_id, v.details)
                stage, status = service_stage_status(v.closure)
                await service_repo.save_service_view(
                    conn,
                    registration_id=cmd.application_id,
                    version=version,
                    service_state=v.service_state.value,
                    arrears_stage=v.arrears_stage.value,
                    realname_stage=v.realname_stage.value,
                    realname_due_at=v.realname_due_at,
                    balance_fen=v.balance_fen,
                    next_deadline=v.next_deadline,
                    next_deadline_kind=v.next_deadline_kind.value if v.next_deadline_kind else None,
                    overdue=v.overdue,
                    stage=stage.value,
                    status=status.value,
                    lifecycle=lifecycle_of(stage, status, v.service_state, v.closure).value,
                    updated_at=change.at,
                )
        except _Duplicate:
            async with self._pool.acquire() as conn:
                stored = await service_repo.stored_event_type(conn, cmd.event_id)
            return self._already_recorded(cmd, stored or change.kind.value)
        except inventory.InventoryError as exc:
            log.error(
                "inventory does not match the service change; retrying until repaired",
                extra={"number": cmd.number, "event_type": change.kind.value, "error": str(exc)},
            )
            raise ApplicationError(str(exc), type=ERR_INVENTORY) from exc
        log.info(
            "service change recorded",
            extra={"stream": cmd.application_id, "version": version, "event_type": change.kind.value},
        )
        return ServiceChangeResult(version=version, carrier_refused=refused, number_released=released)

    @staticmethod
    def _already_recorded(cmd: ApplyServiceChange, stored_type: str) -> ServiceChangeResult:
        """The change's event is stored: a retry, or a worker that died after its
        commit. Only this very change may be answered from it: another change
        stored under its id (a replay that decided differently) is never
        reported as this one's success; it stays pending, loudly, for an
        operator, rather than be lost or counted twice."""
        if stored_type != cmd.change.kind.value:
            log.error(
                "a different service change is stored under this change's id; retrying until repaired",
                extra={"stream": cmd.application_id, "seq": cmd.change.seq, "event_type": stored_type},
            )
            raise ApplicationError(
                f"change {cmd.change.seq} of {cmd.application_id} is stored as {stored_type}, "
                f"not {cmd.change.kind.value}",
                type=ERR_EVENT_MISMATCH,
            )
        return ServiceChangeResult(duplicate=True)

    async def _check_holder(self, conn: asyncpg.Connection, cmd: ApplyServiceChange) -> None:
        # The carrier is told before the transaction; it must never be told to
        # change a number this registration does not hold.
        record = await inventory.get_number(conn, cmd.number)
        if record is None or record.registration_id != cmd.application_id:
            holder = record.registration_id if record else "nobody (not in the inventory)"
            message = f"number {cmd.number} is held by {holder}, not {cmd.application_id}"
            log.error(
                "inventory does not match the service change; retrying until repaired",
                extra={"number": cmd.number, "event_type": cmd.change.kind.value, "error": message},
            )
            raise ApplicationError(message, type=ERR_INVENTORY)

    async def _tell_carrier(self, cmd: ApplyServiceChange) -> str | None:
        action = cmd.change.carrier_action
        if action is None:
            return None
        request = ServiceChangeRequest(
            request_id=cmd.event_id,
            registration_id=cmd.application_id,
            number=cmd.number,
            carrier=cmd.carrier,
            action=action,
        )
        try:
            await self._carrier.change_service(request)
        except CarrierRejected as exc:
            log.error(
                "carrier refused a service change; recorded, reconcile with the carrier",
                extra={"number": cmd.number, "action": action.value, "error": str(exc)},
            )
            return str(exc)
        except CarrierUnavailable as exc:
            log.warning(
                "carrier unavailable, will retry",
                extra={"number": cmd.number, "action": action.value, "attempt": activity.info().attempt},
            )
            raise ApplicationError(str(exc), type=ERR_CARRIER_UNAVAILABLE) from exc
        return None

    async def _follow_in_inventory(self, conn: asyncpg.Connection, cmd: ApplyServiceChange) -> bool | None:
        change = cmd.change
        if not change.state_changed:
            return None
        state = change.state_after
        if state in IN_SERVICE:
            await inventory.set_service_status(conn, cmd.number, cmd.application_id, state.value)
        elif state is ServiceState.QUARANTINED:
            assert change.quarantine_until is not None
            await inventory.quarantine(conn, cmd.number, cmd.application_id, change.quarantine_until)
        elif state is ServiceState.RELEASED:
            return await service_repo.release_quarantined(conn, cmd.number, cmd.application_id, change.at)
        return None


def _payload(cmd: ApplyServiceChange, refused: str | None, released: bool | None) -> dict[str, Any]:
    change = cmd.change
    action = change.carrier_action
    payload: dict[str, Any] = {
        "seq": change.seq,
        "number": cmd.number,
        "state_before": change.state_before.value,
        "state_after": change.state_after.value,
        "balance_fen": change.balance_fen,
        "charge_fen": change.charge_fen,
        # What dashboards and the timeline show after this change.
        "overdue": cmd.view.overdue,
        "next_deadline": cmd.view.next_deadline.isoformat() if cmd.view.next_deadline else None,
        "next_deadline_kind": cmd.view.next_deadline_kind.value if cmd.view.next_deadline_kind else None,
    }
    if action is not None:
        payload["carrier_action"] = action.value
    if refused is not None:
        payload["carrier_refused"] = refused
    if change.quarantine_until is not None:
        payload["quarantine_until"] = change.quarantine_until.isoformat()
    if released is not None:
        payload["released"] = released
    return payload | change.details

"""Activities of the registration workflow.

Each database step of a transition is ONE local activity and ONE transaction:
the inventory change (hold, allocate, activate, release), the domain event and
the read-model row commit together or not at all. That keeps a registration's
real work at one worker-local call per transition (no extra round trip through
the Temporal server), and makes "exactly once" a property of the transaction:

* the workflow derives the event id from what the step is for (the Update
  that asked for it, or the deadline) and its version: the same step gets the
  same id on replay, and a different step at the same version never does;
* the activity does the step and appends the event in one transaction; if the
  event id is already stored, this very step committed before (a retry, or a
  worker that died before Temporal recorded the result): the transaction rolls
  back, undoing the repetition, and the stored event is returned. A concurrent
  duplicate ends the same way, on the unique event id or on the version's key
  (the event id is looked up first);
* if the version is taken by another event, a different step committed first
  (a worker died after its commit, and the replay met an Update before the
  deadline that step was for): nothing of this step is written, and the stored
  event is returned as ``superseded``. The workflow applies it, as the fact it
  is, and decides the pending step again against the new state.

The carrier call is a local activity retried by the workflow, idempotent by
request id at the carrier.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any

import asyncpg
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.carrier import (
    CarrierGateway,
    CarrierRejected,
    CarrierUnavailable,
    ProvisionRequest,
    ProvisionResult,
)
from activities.number_choice import search_criteria
from activities.repositories import applications, events, inventory
from app.settings import Settings
from domain.applicant import ApplicationForm, check_application
from domain.errors import FieldError
from domain.fees import FeeSchedule
from domain.masking import application_summary
from domain.requirements import load_catalogue
from domain.resubmission import resubmission_problems
from domain.timeline import Event, EventType, RegistrationState, Status, apply_event

log = logging.getLogger("activities.registration")

# ApplicationError types the workflow and its retry policies refer to.
ERR_CONCURRENCY_CONFLICT = "ConcurrencyConflict"
ERR_INVENTORY = "InventoryError"
ERR_CARRIER_REJECTED = "CarrierRejected"
ERR_CARRIER_UNAVAILABLE = "CarrierUnavailable"

_MODEL = ConfigDict(frozen=True)


class InventoryAction(StrEnum):
    NONE = "none"
    RELEASE = "release"
    ACTIVATE = "activate"


class ApplyCommand(BaseModel):
    """Validate the application, hold its number, record ApplicationSubmitted (or
    ApplicationRefused, when invalid or no number can be held)."""

    model_config = _MODEL

    workflow_id: str
    event: Event
    form: ApplicationForm
    hold_expires_at: datetime


class ResubmitCommand(BaseModel):
    """Validate a resubmitted application against the change request and the
    form it corrects (``previous``); record ApplicationResubmitted if it passes.
    A requested number other than the one held is held instead (until
    ``hold_expires_at``), in the event's transaction."""

    model_config = _MODEL

    workflow_id: str
    state: RegistrationState
    event: Event
    form: ApplicationForm
    previous: ApplicationForm | None = None
    hold_expires_at: datetime | None = None


class ApproveCommand(BaseModel):
    """Allocate the held number, fix its fees, record ApplicationApproved (or
    NumberLost if the hold had lapsed and someone else took the number)."""

    model_config = _MODEL

    workflow_id: str
    state: RegistrationState
    event: Event
    prepayment_months: int
    prepayment_floor_fen: int
    hold_expires_at: datetime


class TransitionCommand(BaseModel):
    """Record ``event`` with an optional inventory change on the registration's number."""

    model_config = _MODEL

    workflow_id: str
    state: RegistrationState
    event: Event
    action: InventoryAction = InventoryAction.NONE


class StepResult(BaseModel):
    """The event as stored (None when nothing was recorded, e.g. a refused resubmission).

    ``duplicate``: the step had committed before; ``event`` is its own.
    ``superseded``: another step took the draft's version first; ``event`` is
    that step's, and nothing of this one was written."""

    model_config = _MODEL

    event: Event | None = None
    duplicate: bool = False
    superseded: bool = False
    problems: list[dict[str, str]] = Field(default_factory=list)


class RenewHoldCommand(BaseModel):
    model_config = _MODEL

    registration_id: str
    number: str
    expires_at: datetime


class CancelProvisioningCommand(BaseModel):
    model_config = _MODEL

    request_id: str
    number: str
    carrier: str


class _NumberTaken(Exception):
    """Rolls back a resubmission whose requested number could not be held."""


class _AlreadyAppended(Exception):
    """Rolls back a transaction whose event a concurrent duplicate already stored."""


def _problems(errors: Sequence[FieldError]) -> list[dict[str, str]]:
    return [e.as_dict() for e in errors]


class RegistrationActivities:
    def __init__(self, pool: asyncpg.Pool, settings: Settings, carrier: CarrierGateway) -> None:
        self._pool = pool
        self._settings = settings
        self._carrier = carrier

    def callables(self) -> list[Callable[..., Any]]:
        return [
            self.current_form,
            self.apply,
            self.resubmit,
            self.approve,
            self.record,
            self.renew_hold,
            self.provision,
            self.cancel_provisioning,
        ]

    # -- the one transaction per transition ---------------------------------

    async def _commit(
        self,
        workflow_id: str,
        before: RegistrationState | None,
        draft: Event,
        work: Callable[[asyncpg.Connection], Awaitable[Event]],
        *,
        changes_inventory: bool = True,
    ) -> StepResult:
        async with self._pool.acquire() as conn:
            try:
                if changes_inventory:
                    async with conn.transaction():
                        # The inventory functions are idempotent for the registration, so
                        # a repeated step redoes its work harmlessly here; the append then
                        # finds the event stored, and the rollback undoes the repetition.
                        event = await work(conn)
                        await self._append(conn, workflow_id, before, event)
                else:
                    # One statement, atomic on its own: no transaction round trips.
                    event = await work(conn)
                    await self._append(conn, workflow_id, before, event)
            except _AlreadyAppended:
                return await self._already_recorded(conn, draft)
            except events.ConcurrencyConflict as exc:
                # A concurrent duplicate of this very step can meet the version's
                # key before the event id's: then it is this step's own event.
                if await events.find_event(conn, draft.event_id) is not None:
                    return await self._already_recorded(conn, draft)
                taken = await self._taken_by(conn, draft)
                if taken is not None:
                    return taken
                raise ApplicationError(str(exc), type=ERR_CONCURRENCY_CONFLICT, non_retryable=True) from exc
            except inventory.InventoryError as exc:
                # A retry of a step that committed may find the number moved on,
                # and so may a step whose version another step took first.
                if await events.find_event(conn, draft.event_id) is not None:
                    return await self._already_recorded(conn, draft)
                taken = await self._taken_by(conn, draft)
                if taken is not None:
                    return taken
                # Otherwise the number is in a state this step cannot start from,
                # which no retry will change.
                raise ApplicationError(str(exc), type=ERR_INVENTORY, non_retryable=True) from exc
        log.info(
            "registration event recorded",
            extra={"stream": event.stream_id, "version": event.version, "event_type": event.event_type.value},
        )
        return StepResult(event=event)

    @staticmethod
    async def _append(
        conn: asyncpg.Connection, workflow_id: str, before: RegistrationState | None, event: Event
    ) -> None:
        if not await events.append_and_save(conn, event, apply_event(before, event), workflow_id):
            raise _AlreadyAppended

    async def _already_recorded(self, conn: asyncpg.Connection, draft: Event) -> StepResult:
        stored = await events.find_event(conn, draft.event_id)
        assert stored is not None
        if (stored.stream_id, stored.version) != (draft.stream_id, draft.version):
            # Ids are derived per stream and version (the workflow's _draft): an id
            # stored elsewhere is a bug or tampering, never this step's success.
            raise ApplicationError(
                f"event id {draft.event_id} is stored as {stored.stream_id} v{stored.version}, "
                f"not {draft.stream_id} v{draft.version}",
                type=ERR_CONCURRENCY_CONFLICT,
                non_retryable=True,
            )
        log.info("step already recorded", extra={"stream": stored.stream_id, "version": stored.version})
        return StepResult(event=stored, duplicate=True)

    @staticmethod
    async def _taken_by(conn: asyncpg.Connection, draft: Event) -> StepResult | None:
        """The step stored at the draft's version in its place, if any."""
        stored = await events.registration_events_after(conn, draft.stream_id, draft.version - 1)
        if not stored or stored[0].version != draft.version:
            return None
        first = stored[0]
        log.warning(
            "another step was recorded first",
            extra={
                "stream": first.stream_id,
                "version": first.version,
                "event_type": first.event_type.value,
                "draft_event_type": draft.event_type.value,
            },
        )
        return StepResult(event=first, superseded=True)

    # -- activities -----------------------------------------------------------

    @activity.defn(name="registration.current_form")
    async def current_form(self, application_id: str) -> ApplicationForm | None:
        """The application's current form (as submitted or last resubmitted), for a
        workflow that applied a resubmission it did not make itself."""
        from api.services.personal_data import current_form, form_cipher

        async with self._pool.acquire() as conn:
            data = await current_form(conn, form_cipher(self._settings), application_id)
        return ApplicationForm.model_validate(data) if data is not None else None

    @activity.defn(name="registration.apply")
    async def apply(self, cmd: ApplyCommand) -> StepResult:
        form = cmd.form
        facts: dict[str, Any] = {
            "organisation_id": form.organisation_id,
            "carrier": form.carrier,
            "company_name": form.company_name,
            "credit_code": form.credit_code,
            "summary": application_summary(form),
        }

        def refused(status: Status, problems: list[dict[str, str]]) -> Event:
            payload = facts | {"status": status.value, "problems": problems}
            return cmd.event.model_copy(
                update={"event_type": EventType.APPLICATION_REFUSED, "payload": payload}
            )

        async def work(conn: asyncpg.Connection) -> Event:
            # What the applicant sees, should the API have died between the
            # workflow start and its own insert (see repositories/applications.py).
            await applications.record_application(
                conn,
                application_id=cmd.event.stream_id,
                organisation_id=form.organisation_id,
                workflow_id=cmd.workflow_id,
                carrier_code=form.carrier,
                company_name=form.company_name,
                submitted_by=cmd.event.actor,
                document_ids=[d.document_id for d in form.documents],
            )
            # The form as submitted, encrypted, for staff to reveal a field with a
            # reason (the console); once, whichever of the API and this step is first.
            from api.services.personal_data import form_cipher, store_submitted_form

            await store_submitted_form(
                conn, form_cipher(self._settings), cmd.event.stream_id, form.model_dump(mode="json")
            )
            problems = check_application(form, load_catalogue())
            if problems:
                return refused(Status.INVALID, _problems(problems))
            reg_id = cmd.event.stream_id
            record: inventory.NumberRecord | None = None
            try:
                if form.requested_number is not None:
                    record = await inventory.hold_number(
                        conn, form.requested_number, reg_id, cmd.hold_expires_at, carrier_code=form.carrier
                    )
                    current = None if record else await inventory.get_number(conn, form.requested_number)
                    if current is not None and current.carrier_code != form.carrier:
                        return refused(
                            Status.INVALID,
                            _problems(
                                [
                                    FieldError(
                                        "requested_number",
                                        "carrier_mismatch",
                                        f"This number belongs to {current.carrier_code}, not {form.carrier}: "
                                        "pick a number of the chosen carrier.",
                                    )
                                ]
                            ),
                        )
                elif form.number_criteria is not None:
                    try:
                        criteria = search_criteria(form.carrier, form.number_criteria)
                    except ValidationError as exc:
                        return refused(
                            Status.INVALID,
                            [
                                {"field": "number_criteria", "code": "invalid_criteria", "message": e["msg"]}
                                for e in exc.errors()
                            ],
                        )
                    record = await inventory.hold_matching(conn, reg_id, criteria, cmd.hold_expires_at)
            except inventory.RegistrationHoldsAnotherNumber:
                record = None
            if record is None:
                return refused(
                    Status.NUMBER_UNAVAILABLE,
                    [
                        {
                            "field": "requested_number" if form.requested_number else "number_criteria",
                            "code": "number_unavailable",
                            "message": "No number could be held: it is taken, or none matches. Search again.",
                        }
                    ],
                )
            payload = (
                cmd.event.payload
                | facts
                | {
                    "number": record.number,
                    "tier": record.tier,
                    "min_monthly_spend_fen": record.min_monthly_spend_fen,
                    "hold_expires_at": cmd.hold_expires_at.isoformat(),
                }
            )
            return cmd.event.model_copy(update={"payload": payload})

        return await self._commit(cmd.workflow_id, None, cmd.event, work)

    @activity.defn(name="registration.resubmit")
    async def resubmit(self, cmd: ResubmitCommand) -> StepResult:
        state = cmd.state
        request = state.change_request
        problems = _problems(check_application(cmd.form, load_catalogue()))
        problems += _problems(
            resubmission_problems(
                cmd.previous.model_dump(mode="json") if cmd.previous is not None else None,
                cmd.form.model_dump(mode="json"),
                carrier=state.carrier,
                organisation_id=state.organisation_id,
                fields=request.fields if request is not None else (),
                documents=request.documents if request is not None else (),
            )
        )
        if problems:
            return StepResult(problems=problems)
        wanted = cmd.form.requested_number
        switch = wanted is not None and wanted != state.number and cmd.hold_expires_at is not None

        async def work(conn: asyncpg.Connection) -> Event:
            # The form as resubmitted becomes the application's current one in the
            # same transaction as its event: what staff reveal, and what the
            # workflow reads back should it apply this event without the form
            # (a step stored by a worker that died: see RegistrationWorkflow._current_form).
            from api.services.personal_data import form_cipher, store_form

            await store_form(
                conn,
                form_cipher(self._settings),
                state.application_id,
                cmd.form.model_dump(mode="json"),
                accepted=True,
            )
            payload = cmd.event.payload | {
                "company_name": cmd.form.company_name,
                "credit_code": cmd.form.credit_code,
                "summary": application_summary(cmd.form),
            }
            if switch:
                assert wanted is not None and cmd.hold_expires_at is not None
                record = await inventory.switch_hold(
                    conn, state.number, wanted, state.application_id, cmd.hold_expires_at, state.carrier
                )
                if record is None:
                    raise _NumberTaken
                payload |= {
                    "number": record.number,
                    "previous_number": state.number,
                    "tier": record.tier,
                    "min_monthly_spend_fen": record.min_monthly_spend_fen,
                    "hold_expires_at": cmd.hold_expires_at.isoformat(),
                }
            return cmd.event.model_copy(update={"payload": payload})

        try:
            return await self._commit(cmd.workflow_id, state, cmd.event, work)
        except _NumberTaken:
            async with self._pool.acquire() as conn:
                # A retry of a step that committed, or a step stored first in this one's place.
                if await events.find_event(conn, cmd.event.event_id) is not None:
                    return await self._already_recorded(conn, cmd.event)
                taken = await self._taken_by(conn, cmd.event)
            if taken is not None:
                return taken
            shown = f"{wanted[:3]}-{wanted[3:6]}-{wanted[6:]}" if wanted else ""
            return StepResult(
                problems=[
                    {
                        "field": "requested_number",
                        "code": "number_unavailable",
                        "message": f"{shown} was taken meanwhile: the application keeps the number it "
                        "holds; search for another one, or leave requested_number as it was.",
                    }
                ]
            )

    @activity.defn(name="registration.approve")
    async def approve(self, cmd: ApproveCommand) -> StepResult:
        state = cmd.state
        number = state.number
        if number is None:
            raise ApplicationError(
                "an approved registration must hold a number", type=ERR_INVENTORY, non_retryable=True
            )

        async def work(conn: asyncpg.Connection) -> Event:
            try:
                # No savepoint: allocate changes nothing when it raises.
                record = await inventory.allocate(conn, number, state.application_id)
            except inventory.NumberNotHeld:
                # The hold lapsed (say the worker was down past its lease): take the
                # number again if nobody else has.
                again = await inventory.hold_number(conn, number, state.application_id, cmd.hold_expires_at)
                if again is None:
                    return cmd.event.model_copy(
                        update={
                            "event_type": EventType.NUMBER_LOST,
                            "reason": "the hold on the number lapsed and the number was taken",
                            "payload": {"number": number},
                        }
                    )
                record = await inventory.allocate(conn, number, state.application_id)
            fees = FeeSchedule.for_tier(
                record.min_monthly_spend_fen, cmd.prepayment_months, cmd.prepayment_floor_fen
            )
            payload = cmd.event.payload | {
                "number": record.number,
                "tier": record.tier,
                "min_monthly_spend_fen": fees.min_monthly_spend_fen,
                "first_prepayment_fen": fees.first_prepayment_fen,
            }
            return cmd.event.model_copy(update={"payload": payload})

        return await self._commit(cmd.workflow_id, state, cmd.event, work)

    @activity.defn(name="registration.record")
    async def record(self, cmd: TransitionCommand) -> StepResult:
        state = cmd.state
        number = state.number
        action = cmd.action if number is not None else InventoryAction.NONE

        async def work(conn: asyncpg.Connection) -> Event:
            if number is not None and action is InventoryAction.RELEASE:
                released = await inventory.release(conn, number, state.application_id)
                return cmd.event.model_copy(update={"payload": cmd.event.payload | {"released": released}})
            if number is not None and action is InventoryAction.ACTIVATE:
                await inventory.activate(conn, number, state.application_id)
            return cmd.event

        return await self._commit(
            cmd.workflow_id, state, cmd.event, work, changes_inventory=action is not InventoryAction.NONE
        )

    @activity.defn(name="registration.renew_hold")
    async def renew_hold(self, cmd: RenewHoldCommand) -> bool:
        """Move the lease on the held number; False if the registration no longer holds it."""
        async with self._pool.acquire() as conn:
            return await inventory.extend_hold(conn, cmd.number, cmd.registration_id, cmd.expires_at)

    @activity.defn(name="registration.provision")
    async def provision(self, request: ProvisionRequest) -> ProvisionResult:
        try:
            return await self._carrier.provision(request)
        except CarrierRejected as exc:
            raise ApplicationError(str(exc), exc.code, type=ERR_CARRIER_REJECTED, non_retryable=True) from exc
        except CarrierUnavailable as exc:
            log.warning(
                "carrier unavailable, will retry",
                extra={"number": request.number, "attempt": activity.info().attempt},
            )
            raise ApplicationError(str(exc), type=ERR_CARRIER_UNAVAILABLE) from exc

    @activity.defn(name="registration.cancel_provisioning")
    async def cancel_provisioning(self, cmd: CancelProvisioningCommand) -> None:
        await self._carrier.cancel(cmd.request_id, cmd.number, cmd.carrier)

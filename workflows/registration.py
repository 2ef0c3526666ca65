"""The registration workflow: apply, audit, allocate, verify, activate.

One execution per application, id ``registration_workflow_id(application_id)``;
names and payloads in ``workflows/contracts.py``. At ACTIVE the same run carries
on as the number's service (``ServiceFlow``, whose Updates it takes through
``ServiceUpdates``) until the service continues as new into ``ServiceWorkflow``
(``workflows/service.py``) after a run's worth of billing cycles.

Why no sandbox: the Python SDK's workflow sandbox re-imports a workflow's module
for every execution and runs each payload's serialization-context lookup through
``exec`` inside it; measured by bench/registration_bench.py that was 17 ms of the
worker's 55 ms of CPU per registration. Both workflows are therefore declared
with ``sandboxed=False``. What keeps them deterministic instead: no module-level
state, the clock, randomness and ids only through ``workflow.*``;
tests/workflows/test_determinism_guard.py reads every module in ``workflows/``
and ``domain/`` for clock, random, environment and I/O calls, and the committed
histories in tests/workflows/histories/ replay in CI.

How it is put together:

* State is a ``RegistrationState`` moved only by ``apply_event`` (domain.timeline),
  the same fold that rebuilds a registration from the event log. Every transition
  drafts one event (next version), hands it to ONE local activity that commits
  the inventory change, the event and the read-model row in one transaction,
  and applies the event as stored.
* Operator and applicant actions arrive as Updates. Validators turn away what
  does not fit the current status before anything is written to history; the
  handlers then run one at a time under ``self._lock`` and check again, so of
  two concurrent decisions exactly one is applied and the other gets
  "already decided".
* The main loop owns the deadlines: it sleeps until the next one (or until an
  Update moves the state) and, under the same lock, applies the deadline only if
  the state is still the one it slept on.
* The carrier call is a local activity in the workflow task that reached
  PROVISIONING (``_call_carrier``), retried here with backoff; search attributes
  are published once the registration has settled (``_settled``).
* Every path that does not end in ACTIVE records a closing event whose
  transaction releases the number.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, NoReturn, TypeVar

from temporalio import workflow
from temporalio.common import RawValue, RetryPolicy, SearchAttributeUpdate
from temporalio.exceptions import ActivityError, ApplicationError, FailureError
from temporalio.exceptions import TimeoutError as CallTimedOut

from activities.carrier import ProvisionRequest, ProvisionResult
from activities.registration import (
    ERR_CARRIER_REJECTED,
    ERR_CONCURRENCY_CONFLICT,
    ERR_INVENTORY,
    ApplyCommand,
    ApproveCommand,
    CancelProvisioningCommand,
    InventoryAction,
    RegistrationActivities,
    RenewHoldCommand,
    ResubmitCommand,
    StepResult,
    TransitionCommand,
)
from domain.applicant import ApplicationForm
from domain.calendar import add_working_days
from domain.lifecycle import lifecycle_of
from domain.service_rules import ServiceDurations, realname_due
from domain.timeline import CLOSING_EVENTS, Event, EventType, RegistrationState, Stage, Status, apply_event
from workflows.contracts import (
    ERR_ACTIVATING,
    ERR_ALREADY_DECIDED,
    ERR_INVALID_APPLICATION,
    ERR_WRONG_STAGE,
    QUERY_STATUS,
    SYSTEM_ACTOR,
    UPDATE_DECIDE,
    UPDATE_PAY,
    UPDATE_RESUBMIT,
    UPDATE_SUBMISSION,
    UPDATE_VERIFY,
    UPDATE_WITHDRAW,
    WORKFLOW_NAME,
    Actor,
    ChangeRequest,
    Decision,
    DecisionRequest,
    Fees,
    FieldProblem,
    PaymentRequest,
    PaymentResult,
    RegistrationInput,
    RegistrationResult,
    RegistrationStatus,
    RegistrationTimings,
    Rejection,
    RejectionReason,
    Resubmission,
    VerificationOutcome,
    VerificationRequest,
    WithdrawalRequest,
    registration_workflow_id,
)
from workflows.search_attributes import (
    CARRIER,
    LIFECYCLE,
    NEXT_DEADLINE,
    ORGANISATION,
    OVERDUE,
    SERVICE_NUMBER,
    STAGE,
)
from workflows.service import ServiceUpdates
from workflows.service_contracts import ServiceResult, service_input_from_registration
from workflows.service_flow import ServiceFlow

# Database steps are short; transient failures (a PostgreSQL restart) are
# retried without limit, business conflicts are not retried at all.
_DB_STEP_TIMEOUT = timedelta(seconds=30)
_DB_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200),
    maximum_interval=timedelta(seconds=30),
    non_retryable_error_types=[ERR_CONCURRENCY_CONFLICT, ERR_INVENTORY],
)

_UNSET = object()

# Event ids are derived from what a step is for and where it lands in the
# stream, never drawn: replay gives a step the id it committed under, and a
# different step at the same version a different one (see _draft).
_EVENT_NAMESPACE = uuid.UUID("3a9e4c1b-7d52-4f08-b6a1-2e5d9c0f4a17")

_T = TypeVar("_T")

# Claims taken synchronously when a handler starts, read by validators: a second
# Update of the same kind arriving while the first is being applied is turned
# away at once instead of queueing behind the lock.
_DECISION = "decision"
_VERIFICATION = "verification"
_RESUBMISSION = "resubmission"
_WITHDRAWAL = "withdrawal"


def _wrong_stage(message: str) -> NoReturn:
    raise ApplicationError(message, type=ERR_WRONG_STAGE, non_retryable=True)


def _already_decided(message: str) -> NoReturn:
    raise ApplicationError(message, type=ERR_ALREADY_DECIDED, non_retryable=True)


class _Superseded(Exception):
    """A step found its version taken by another step, stored first (by a worker
    that died after its commit); that step is applied, and the pending one must
    be decided again against the state it left."""

    def __init__(self, first: Event) -> None:
        super().__init__(first.event_type.value)
        self.first = first


@workflow.defn(name=WORKFLOW_NAME, sandboxed=False)
class RegistrationWorkflow(ServiceUpdates):
    """One registration's state and behaviour, and from ACTIVE on its service's."""

    @workflow.init
    def __init__(self, inp: RegistrationInput) -> None:
        self._inp = inp
        self._form: ApplicationForm = inp.form
        self._timings = inp.timings
        self._workflow_id = registration_workflow_id(inp.application_id)
        self._state = RegistrationState(
            application_id=inp.application_id,
            organisation_id=inp.form.organisation_id,
            carrier=inp.form.carrier,
            company_name=inp.form.company_name,
            credit_code=inp.form.credit_code,
        )
        self._lock = asyncio.Lock()
        self._claims: set[str] = set()
        self._hold_expires_at: datetime | None = None
        self._provision: asyncio.Future[ProvisionResult] | None = None
        self._published: dict[str, Any] = {}
        # From ACTIVE on, the number's service, which this run carries on as.
        self._service: ServiceFlow | None = None
        # Whether the carrier may have an order to cancel should the registration close.
        self._reached_provisioning = False
        # Whether self._form is the application's current form (see _current_form).
        self._form_current = True

    # ------------------------------------------------------------------ run

    @workflow.run
    async def run(self, inp: RegistrationInput) -> RegistrationResult | ServiceResult:
        try:
            async with self._lock:
                with contextlib.suppress(_Superseded):
                    await self._apply()
            while self._state.is_open:
                if not await self._settled():
                    continue
                # Provisioning shows its stage itself, should a call fail.
                if self._state.status is not Status.PROVISIONING:
                    self._publish()
                await self._step()
        except asyncio.CancelledError:
            # Cancelling the workflow (say from the Temporal UI) must not leak the hold.
            await self._close_on_cancel()
            self._publish()
            if self._service is not None:
                # The number was recorded active before the withdrawal could be
                # (a step a dead worker stored): it is in service, and a service
                # ends by termination, not by cancelling its workflow.
                workflow.logger.warning("cancellation refused: the number is already in service")
                return await self._service.run()
            await self._cancel_after_closing()
            raise
        except FailureError as err:
            # A database step failed for good (a conflict no retry fixes). Failing the
            # workflow would strand the held number; failing the workflow task keeps
            # the registration where it is, retried until the cause is fixed.
            raise RuntimeError(f"registration step failed: {err.cause or err}") from err
        # Let Update handlers that queued behind the last transition answer first.
        await workflow.wait_condition(workflow.all_handlers_finished)
        if self._service is None:
            self._publish()
            await self._cancel_after_closing()
            return self._result()
        # The number is in service: this run carries on as the service (which
        # publishes the stage, lifecycle and deadline from here on) until the
        # service continues as new into ServiceWorkflow, sparing every
        # registration a run of its own at ACTIVE (its end, the next one's start
        # and first task).
        return await self._service.run()

    async def _settled(self) -> bool:
        """Whether the registration has settled: no Update is being applied, so
        what the search attributes would show now is what the Temporal UI sees
        once this workflow task completes.

        Only a workflow task's end reaches visibility, so publishing between two
        transitions of one task costs an upsert (a history event and a
        visibility write) that nobody sees: typically an operator's decision
        sent straight after the start, applied in the same task as the apply
        step. Updates delivered with this task get their turn first; while one
        runs, this waits for it to move the state or finish, and says no."""
        await workflow.wait_condition(lambda: True)
        if workflow.all_handlers_finished():
            return True
        version = self._state.version
        await workflow.wait_condition(
            lambda: self._state.version != version or workflow.all_handlers_finished()
        )
        return False

    @property
    def _service_durations(self) -> ServiceDurations:
        return ServiceDurations.model_validate(self._timings.carrier_durations)

    def _result(self) -> RegistrationResult:
        return RegistrationResult(
            application_id=self._inp.application_id,
            outcome="active" if self._state.stage is Stage.ACTIVE else "closed",
            status=self._status(),
            correlation_id=self._inp.correlation_id,
        )

    async def _step(self) -> None:
        """Wait for the next deadline or for an Update to move the state; apply the deadline."""
        if self._state.status is Status.PROVISIONING:
            await self._provision_number()
            return
        version = self._state.version
        timer = self._next_timer()
        if timer is None:
            await workflow.wait_condition(lambda: self._state.version != version)
            return
        due, action = timer
        delay = due - workflow.now()
        if delay > timedelta(0):
            try:
                await workflow.wait_condition(lambda: self._state.version != version, timeout=delay)
                return
            except TimeoutError:
                pass
        async with self._lock:
            # An Update may have moved the state while this waited for the lock.
            # A step stored first in this deadline's place moved it too: the loop
            # plans again from there.
            if self._state.version == version:
                with contextlib.suppress(_Superseded):
                    await action()

    def _next_timer(self) -> tuple[datetime, Callable[[], Awaitable[None]]] | None:
        s = self._state
        timers: list[tuple[datetime, Callable[[], Awaitable[None]]]] = []
        if s.status is Status.IN_REVIEW and not s.overdue and s.review_due is not None:
            timers.append((s.review_due, self._mark_overdue))
        elif s.status is Status.CHANGES_REQUESTED and s.change_request is not None:
            timers.append((s.change_request.resubmit_by, self._abandon))
        elif s.status is Status.AWAITING_PREPAYMENT and s.pay_by is not None:
            timers.append((s.pay_by, self._expire_prepayment))
        elif s.status is Status.AWAITING_VERIFICATION and s.verify_by is not None:
            timers.append((s.verify_by, self._expire_verification))
        elif s.status is Status.AWAITING_ACTIVATION and s.activation_at is not None:
            timers.append((s.activation_at, self._start_provisioning))
        if s.stage is Stage.AUDIT and self._hold_expires_at is not None:
            # Renew the lease on the held number halfway through, for as long as the audit lasts.
            timers.append((self._hold_expires_at - self._timings.hold_lease / 2, self._renew_hold))
        return min(timers, key=lambda t: t[0]) if timers else None

    # ------------------------------------------------------------ transitions

    def _draft(
        self,
        event_type: EventType,
        actor: Actor,
        *,
        reason: str | None = None,
        correlation_id: str | None = None,
        payload: dict[str, Any] | None = None,
    ) -> Event:
        version = self._state.version + 1
        # What the step is for: the Update that asked for it (its id is in the
        # history, so replay sees the same), or else the step itself (a deadline,
        # the apply step, the carrier's answer).
        update = workflow.current_update_info()
        cause = f"update:{update.id}" if update is not None else f"step:{event_type.value}"
        return Event(
            stream_id=self._inp.application_id,
            version=version,
            event_id=str(uuid.uuid5(_EVENT_NAMESPACE, f"{self._inp.application_id}/{version}/{cause}")),
            event_type=event_type,
            actor=actor.id,
            actor_role=actor.role,
            reason=reason,
            correlation_id=correlation_id or self._inp.correlation_id,
            occurred_at=workflow.now(),
            payload=payload or {},
        )

    async def _db_step(self, fn: Any, cmd: Any) -> StepResult:
        """One step's local activity; its event applied as stored. Raises
        _Superseded when another step had taken its version (see _Superseded)."""
        result: StepResult = await workflow.execute_local_activity_method(
            fn, cmd, start_to_close_timeout=_DB_STEP_TIMEOUT, retry_policy=_DB_RETRY
        )
        if result.event is not None:
            self._adopt(result.event)
            if result.superseded:
                raise _Superseded(result.event)
        return result

    def _adopt(self, event: Event) -> None:
        self._state = apply_event(self._state, event)
        if self._state.status is Status.PROVISIONING:
            self._reached_provisioning = True
        if event.event_type is EventType.APPLICATION_RESUBMITTED:
            # Until the handler that made it says otherwise, the form it carried
            # is not the one held here (_current_form).
            self._form_current = False
        if self._state.stage is Stage.ACTIVE and self._service is None:
            # In service from this instant: the service's Updates are taken from
            # here on, before run() gets round to serving.
            self._service = ServiceFlow(service_input_from_registration(self._result(), self._timings))

    async def _until_decided(self, attempt: Callable[[], Awaitable[_T]]) -> _T:
        """Run ``attempt`` (check the state, then record) until no step stored
        first takes its place. If the state it then finds refuses it, the
        refusal says which step came first."""
        first: Event | None = None
        while True:
            try:
                return await attempt()
            except _Superseded as superseded:
                first = first or superseded.first
            except ApplicationError as err:
                if first is None or err.type not in (ERR_WRONG_STAGE, ERR_ALREADY_DECIDED):
                    raise
                raise ApplicationError(
                    f"{err.message}; {first.event_type.value} was recorded first, "
                    f"at {first.occurred_at.isoformat()}",
                    *err.details,
                    type=err.type,
                    non_retryable=True,
                ) from None

    async def _record(
        self,
        event_type: EventType,
        actor: Actor,
        *,
        action: InventoryAction = InventoryAction.NONE,
        reason: str | None = None,
        correlation_id: str | None = None,
        payload: dict[str, Any] | None = None,
    ) -> None:
        if event_type in CLOSING_EVENTS and self._state.paid_fen > 0:
            # Closed without activation after paying: all of it is owed back.
            payload = {**(payload or {}), "refund_owed_fen": self._state.paid_fen}
        draft = self._draft(event_type, actor, reason=reason, correlation_id=correlation_id, payload=payload)
        cmd = TransitionCommand(workflow_id=self._workflow_id, state=self._state, event=draft, action=action)
        await self._db_step(RegistrationActivities.record, cmd)

    async def _apply(self) -> None:
        now = workflow.now()
        self._hold_expires_at = now + self._timings.hold_lease
        activation_at = self._form.activation_at
        draft = self._draft(
            EventType.APPLICATION_SUBMITTED,
            self._inp.submitted_by,
            payload={
                "review_due": add_working_days(now, self._timings.review_target_working_days).isoformat(),
                "activation_at": activation_at.isoformat() if activation_at else None,
            },
        )
        cmd = ApplyCommand(
            workflow_id=self._workflow_id, event=draft, form=self._form, hold_expires_at=self._hold_expires_at
        )
        await self._db_step(RegistrationActivities.apply, cmd)

    async def _mark_overdue(self) -> None:
        review_due = self._state.review_due
        await self._record(
            EventType.REVIEW_OVERDUE,
            SYSTEM_ACTOR,
            reason="review target passed without a decision",
            payload={"review_due": review_due.isoformat() if review_due else None},
        )

    async def _abandon(self) -> None:
        await self._record(
            EventType.APPLICATION_ABANDONED,
            SYSTEM_ACTOR,
            action=InventoryAction.RELEASE,
            reason="no resubmission within the window",
        )

    async def _expire_prepayment(self) -> None:
        await self._record(
            EventType.PREPAYMENT_EXPIRED,
            SYSTEM_ACTOR,
            action=InventoryAction.RELEASE,
            reason="first prepayment not received in time",
            payload={"paid_fen": self._state.paid_fen, "required_fen": self._state.first_prepayment_fen},
        )

    async def _expire_verification(self) -> None:
        await self._record(
            EventType.VERIFICATION_EXPIRED,
            SYSTEM_ACTOR,
            action=InventoryAction.RELEASE,
            reason="real-name verification not completed in time",
        )

    async def _renew_hold(self) -> None:
        number = self._state.number
        if number is None:
            return
        expires_at = workflow.now() + self._timings.hold_lease
        await workflow.execute_local_activity_method(
            RegistrationActivities.renew_hold,
            RenewHoldCommand(registration_id=self._inp.application_id, number=number, expires_at=expires_at),
            start_to_close_timeout=_DB_STEP_TIMEOUT,
            retry_policy=_DB_RETRY,
        )
        # Renewed or not (a lapsed hold someone took), approval re-checks the
        # number; the lease clock restarts either way so this does not spin.
        self._hold_expires_at = expires_at

    async def _start_provisioning(self) -> None:
        await self._record(EventType.PROVISIONING_STARTED, SYSTEM_ACTOR, reason="activation time reached")

    def _provision_request_id(self) -> str:
        # Stable for the registration: every retry and every replacement worker
        # sends the same id, which is what makes the carrier call idempotent.
        return f"{self._inp.application_id}/provision"

    async def _provision_number(self) -> None:
        number = self._state.number
        assert number is not None
        request = ProvisionRequest(
            request_id=self._provision_request_id(),
            registration_id=self._inp.application_id,
            number=number,
            carrier=self._state.carrier,
            destinations=list((await self._current_form()).destination_numbers),
        )
        self._provision = asyncio.ensure_future(self._call_carrier(request))
        result: ProvisionResult | None = None
        failure: BaseException | None = None
        try:
            result = await self._provision
        except (FailureError, asyncio.CancelledError) as err:
            # A cancelled call is expected only when a withdrawal cancelled it;
            # otherwise the workflow itself is being cancelled. (A cancelled local
            # activity comes back as a failure caused by the cancellation.)
            if _WITHDRAWAL not in self._claims and isinstance(err, asyncio.CancelledError):
                raise
            failure = err
        if _WITHDRAWAL not in self._claims and workflow.cancellation_reason() is not None:
            # The workflow was cancelled while the call was on its way. However the
            # call ended (a local activity's cancellation comes back as a failure,
            # or the call answered first), run() withdraws and cancels at the
            # carrier, and the workflow ends cancelled.
            raise asyncio.CancelledError
        async with self._lock:
            self._provision = None
            # Withdrawn while the call was in flight, or a step stored first moved
            # the state (the main loop plans again from there).
            with contextlib.suppress(_Superseded):
                await self._provisioned(result, failure)

    async def _provisioned(self, result: ProvisionResult | None, failure: BaseException | None) -> None:
        """Record what the carrier call came to, if still provisioning."""
        if self._state.status is Status.PROVISIONING:
            if result is not None:
                await self._record(
                    EventType.NUMBER_ACTIVATED,
                    SYSTEM_ACTOR,
                    action=InventoryAction.ACTIVATE,
                    payload={
                        "carrier_reference": result.reference,
                        "carrier_provisioned_at": result.provisioned_at.isoformat(),
                        # The number's first deadline in service: the real-name check
                        # just passed is re-confirmed a year on (as the service starts).
                        "realname_due_at": realname_due(workflow.now(), self._service_durations).isoformat(),
                        # ... and the first billing cycle ends, the nearest deadline.
                        "first_bill_at": (workflow.now() + self._service_durations.billing_cycle).isoformat(),
                    },
                )
                return
            # Retries exhausted or refused for good. The carrier may have done part
            # of the work before failing: the order is cancelled once this is
            # recorded (_cancel_after_closing), so nothing rings through.
            await self._record(
                EventType.PROVISIONING_FAILED,
                SYSTEM_ACTOR,
                action=InventoryAction.RELEASE,
                reason=_failure_message(failure),
            )

    async def _call_carrier(self, request: ProvisionRequest) -> ProvisionResult:
        """The carrier call as a local activity, retried here with exponential backoff.

        One idempotent request that normally answers at once: as a local activity
        it runs in the workflow task that reached PROVISIONING, which then also
        records ACTIVE, instead of an activity task and a workflow task more.
        The retries are the workflow's own so that a failed attempt can publish
        the activate stage before the backoff: an outage can last hours, and the
        Temporal UI should not show the verify stage meanwhile. A worker that
        dies mid-call leaves no marker; the call is made again on replay, with
        the same request id.

        The price: the task that runs the call answers the operator's
        verification (and any Query) once the call has answered, or, for a call
        that outlasts 80% of the workflow task timeout (8 s by default), when the
        task heartbeats; a cancellation or withdrawal is taken then too."""
        t = self._timings
        attempt = 1
        while True:
            try:
                result: ProvisionResult = await workflow.execute_local_activity_method(
                    RegistrationActivities.provision,
                    request,
                    start_to_close_timeout=t.carrier_call_timeout,
                    retry_policy=RetryPolicy(maximum_attempts=1),
                    # A withdrawal cancels at the carrier once this call has
                    # stopped, not while it may still be on its way there.
                    cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
                )
                return result
            except FailureError as err:
                # As in a RetryPolicy, no maximum (0) retries for as long as it takes.
                if 0 < t.carrier_retry_max_attempts <= attempt or not _worth_retrying(err):
                    raise
            self._publish()
            await workflow.sleep(carrier_backoff(t, attempt))
            attempt += 1

    async def _current_form(self) -> ApplicationForm:
        """The application's current form. A resubmission applied from the event
        log without its Update (a step a worker that died had stored) leaves the
        form held here behind: it is read back from where the resubmit step
        stored it, in the event's transaction."""
        if not self._form_current:
            stored: ApplicationForm | None = await workflow.execute_local_activity_method(
                RegistrationActivities.current_form,
                self._inp.application_id,
                start_to_close_timeout=_DB_STEP_TIMEOUT,
                retry_policy=_DB_RETRY,
            )
            if stored is not None:
                self._form = stored
            self._form_current = True
        return self._form

    async def _cancel_after_closing(self) -> None:
        """A registration that closed after provisioning had started cancels its
        carrier order, whichever step closed it (a withdrawal, a failed call, or
        either one stored by a worker that died and applied on replay). After the
        closing event, never before it, and idempotent at the carrier; a provision
        call that reaches the carrier after the cancellation is refused there."""
        if self._state.stage is Stage.CLOSED and self._reached_provisioning:
            await self._cancel_at_carrier()

    async def _cancel_at_carrier(self) -> None:
        number = self._state.number
        assert number is not None
        await workflow.execute_activity_method(
            RegistrationActivities.cancel_provisioning,
            CancelProvisioningCommand(
                request_id=self._provision_request_id(), number=number, carrier=self._state.carrier
            ),
            start_to_close_timeout=self._timings.carrier_call_timeout,
            retry_policy=RetryPolicy(
                initial_interval=self._timings.carrier_retry_initial,
                maximum_interval=self._timings.carrier_retry_max_interval,
            ),
        )

    async def _withdraw_now(self, actor: Actor, reason: str | None, correlation_id: str | None) -> None:
        s = self._state
        if s.status is Status.PROVISIONING:
            handle = self._provision
            if handle is not None and not handle.done():
                handle.cancel()
                # Wait for the carrier call to stop, so that the cancellation
                # below reaches the carrier after it, never before.
                with contextlib.suppress(FailureError, asyncio.CancelledError):
                    await handle
            # The carrier order is cancelled once the withdrawal is recorded
            # (_cancel_after_closing), never before: a worker that died after
            # recording the number active would otherwise have it cancelled at the
            # carrier while our books say active. Recorded first, such a step takes
            # this one's place (superseded) and the withdrawal is refused instead.
        await self._record(
            EventType.APPLICATION_WITHDRAWN,
            actor,
            action=InventoryAction.RELEASE,
            reason=reason,
            correlation_id=correlation_id,
            payload={"from_stage": s.stage.value, "from_status": s.status.value},
        )

    async def _close_on_cancel(self) -> None:
        self._claims.add(_WITHDRAWAL)

        async def attempt() -> None:
            if self._state.is_open and self._state.version > 0:
                await self._withdraw_now(SYSTEM_ACTOR, "registration workflow cancelled", None)

        async with self._lock:
            await self._until_decided(attempt)

    # --------------------------------------------------------------- Updates

    @workflow.update(name=UPDATE_SUBMISSION)
    async def submission(self) -> RegistrationStatus:
        """Answers once the apply step is done: submitted, or refused and why."""
        await workflow.wait_condition(lambda: self._state.version > 0)
        return self._status()

    @submission.validator
    def _validate_submission(self) -> None:
        self._refuse_in_service(UPDATE_SUBMISSION)

    @workflow.update(name=UPDATE_DECIDE)
    async def decide(self, req: DecisionRequest) -> RegistrationStatus:
        self._claim(_DECISION, "a decision on this application is already being recorded")
        try:
            # A decision sent right after the start waits for the apply step
            # rather than failing: callers need not poll for the audit stage.
            await workflow.wait_condition(lambda: self._state.version > 0)
            async with self._lock:
                return await self._until_decided(lambda: self._decide_now(req))
        finally:
            self._claims.discard(_DECISION)

    async def _decide_now(self, req: DecisionRequest) -> RegistrationStatus:
        self._check_decidable()
        now = workflow.now()
        if req.decision is Decision.APPROVE:
            draft = self._draft(
                EventType.APPLICATION_APPROVED,
                req.operator,
                reason=req.reason,
                correlation_id=req.correlation_id,
                payload={"pay_by": (now + self._timings.prepayment_window).isoformat()},
            )
            await self._db_step(
                RegistrationActivities.approve,
                ApproveCommand(
                    workflow_id=self._workflow_id,
                    state=self._state,
                    event=draft,
                    prepayment_months=self._timings.prepayment_months,
                    prepayment_floor_fen=self._timings.prepayment_floor_fen,
                    hold_expires_at=now + self._timings.hold_lease,
                ),
            )
        elif req.decision is Decision.REJECT:
            code = req.reason_code or RejectionReason.OTHER
            await self._record(
                EventType.APPLICATION_REJECTED,
                req.operator,
                action=InventoryAction.RELEASE,
                reason=req.reason,
                correlation_id=req.correlation_id,
                payload={"reason_code": code.value},
            )
        else:
            resubmit_by = add_working_days(now, self._timings.resubmit_working_days)
            await self._record(
                EventType.CHANGES_REQUESTED,
                req.operator,
                reason=req.reason,
                correlation_id=req.correlation_id,
                payload={
                    "fields": list(req.fields),
                    "documents": list(req.documents),
                    "resubmit_by": resubmit_by.isoformat(),
                },
            )
        return self._status()

    @decide.validator
    def _validate_decide(self, req: DecisionRequest) -> None:
        self._refuse_in_service(UPDATE_DECIDE)
        if _DECISION in self._claims:
            _already_decided("a decision on this application is already being recorded")
        if self._state.stage is not Stage.APPLY:
            self._check_decidable()

    def _check_decidable(self) -> None:
        s = self._state
        if s.status is Status.IN_REVIEW:
            return
        if s.status is Status.CHANGES_REQUESTED:
            _already_decided("already decided: changes were requested, waiting for the applicant to resubmit")
        if s.status in (Status.INVALID, Status.NUMBER_UNAVAILABLE, Status.WITHDRAWN, Status.ABANDONED):
            _wrong_stage(f"the application is closed ({s.status.value})")
        _already_decided(f"the application was already decided (status {s.status.value})")

    @workflow.update(name=UPDATE_RESUBMIT)
    async def resubmit(self, req: Resubmission) -> RegistrationStatus:
        self._claim(_RESUBMISSION, "a resubmission is already being processed")
        try:
            async with self._lock:
                return await self._until_decided(lambda: self._resubmit_now(req))
        finally:
            self._claims.discard(_RESUBMISSION)

    async def _resubmit_now(self, req: Resubmission) -> RegistrationStatus:
        self._check_status(Status.CHANGES_REQUESTED, "a resubmission")
        now = workflow.now()
        activation_at = req.form.activation_at
        draft = self._draft(
            EventType.APPLICATION_RESUBMITTED,
            req.actor,
            correlation_id=req.correlation_id,
            payload={
                "review_due": add_working_days(now, self._timings.review_target_working_days).isoformat(),
                "activation_at": activation_at.isoformat() if activation_at else None,
            },
        )
        hold_expires_at = now + self._timings.hold_lease
        result = await self._db_step(
            RegistrationActivities.resubmit,
            ResubmitCommand(
                workflow_id=self._workflow_id,
                state=self._state,
                event=draft,
                form=req.form,
                previous=await self._current_form(),
                hold_expires_at=hold_expires_at,
            ),
        )
        if result.event is None:
            problems = [FieldProblem.model_validate(p) for p in result.problems]
            raise ApplicationError(
                "the resubmitted application has problems: "
                + "; ".join(f"{p.field}: {p.code}" for p in problems[:5]),
                [p.model_dump() for p in problems],
                type=ERR_INVALID_APPLICATION,
                non_retryable=True,
            )
        self._form = req.form
        self._form_current = True
        if "number" in result.event.payload:
            # The hold moved to the number asked for, with a lease of its own.
            self._hold_expires_at = hold_expires_at
        return self._status()

    @resubmit.validator
    def _validate_resubmit(self, req: Resubmission) -> None:
        self._refuse_in_service(UPDATE_RESUBMIT)
        if _RESUBMISSION in self._claims:
            _wrong_stage("a resubmission is already being processed")
        self._check_status(Status.CHANGES_REQUESTED, "a resubmission")

    @workflow.update(name=UPDATE_PAY)
    async def record_payment(self, req: PaymentRequest) -> PaymentResult:
        async with self._lock:
            return await self._until_decided(lambda: self._record_payment_now(req))

    async def _record_payment_now(self, req: PaymentRequest) -> PaymentResult:
        if req.payment_id not in self._state.payment_ids:
            self._check_status(Status.AWAITING_PREPAYMENT, "a prepayment")
            s = self._state
            required = s.first_prepayment_fen or 0
            paid = s.paid_fen + req.amount_fen
            payload: dict[str, Any] = {
                "payment_id": req.payment_id,
                "amount_fen": req.amount_fen,
                "paid_fen": paid,
                "required_fen": required,
                "paid_in_full": paid >= required,
            }
            if paid >= required:
                payload["verify_by"] = (workflow.now() + self._timings.verification_window).isoformat()
            await self._record(
                EventType.PAYMENT_RECEIVED, req.actor, correlation_id=req.correlation_id, payload=payload
            )
            accepted = True
        else:
            accepted = False  # a retried call: counted once
        s = self._state
        required = s.first_prepayment_fen or 0
        return PaymentResult(
            payment_id=req.payment_id,
            accepted=accepted,
            paid_fen=s.paid_fen,
            required_fen=required,
            paid_in_full=s.paid_fen >= required,
            status=self._status(),
        )

    @record_payment.validator
    def _validate_payment(self, req: PaymentRequest) -> None:
        self._refuse_in_service(UPDATE_PAY)
        if req.payment_id in self._state.payment_ids:
            return
        self._check_status(Status.AWAITING_PREPAYMENT, "a prepayment")

    @workflow.update(name=UPDATE_VERIFY)
    async def verify(self, req: VerificationRequest) -> RegistrationStatus:
        self._claim(_VERIFICATION, "a verification result is already being recorded")
        try:
            async with self._lock:
                return await self._until_decided(lambda: self._verify_now(req))
        finally:
            self._claims.discard(_VERIFICATION)

    async def _verify_now(self, req: VerificationRequest) -> RegistrationStatus:
        self._check_verifiable()
        if req.outcome is VerificationOutcome.PASS:
            activation_at = max(self._state.activation_at or workflow.now(), workflow.now())
            await self._record(
                EventType.VERIFICATION_PASSED,
                req.operator,
                reason=req.reason,
                correlation_id=req.correlation_id,
                payload={"activation_at": activation_at.isoformat()},
            )
        else:
            await self._record(
                EventType.VERIFICATION_FAILED,
                req.operator,
                action=InventoryAction.RELEASE,
                reason=req.reason,
                correlation_id=req.correlation_id,
            )
        return self._status()

    @verify.validator
    def _validate_verify(self, req: VerificationRequest) -> None:
        self._refuse_in_service(UPDATE_VERIFY)
        if _VERIFICATION in self._claims:
            _already_decided("a verification result is already being recorded")
        self._check_verifiable()

    def _check_verifiable(self) -> None:
        s = self._state
        if s.status is Status.AWAITING_VERIFICATION:
            return
        if s.stage in (Stage.ACTIVATE, Stage.ACTIVE) or s.status is Status.VERIFICATION_FAILED:
            _already_decided(f"the verification was already recorded (status {s.status.value})")
        _wrong_stage(f"not waiting for verification (status {s.status.value})")

    @workflow.update(name=UPDATE_WITHDRAW)
    async def withdraw(self, req: WithdrawalRequest) -> RegistrationStatus:
        self._claim(_WITHDRAWAL, "a withdrawal is already being processed")
        try:
            async with self._lock:
                return await self._until_decided(lambda: self._withdraw_on_request(req))
        finally:
            self._claims.discard(_WITHDRAWAL)

    async def _withdraw_on_request(self, req: WithdrawalRequest) -> RegistrationStatus:
        self._check_withdrawable()
        await self._withdraw_now(req.actor, req.reason, req.correlation_id)
        return self._status()

    @withdraw.validator
    def _validate_withdraw(self, req: WithdrawalRequest) -> None:
        self._refuse_in_service(UPDATE_WITHDRAW)
        if _WITHDRAWAL in self._claims:
            _wrong_stage("a withdrawal is already being processed")
        self._check_withdrawable()

    def _check_withdrawable(self) -> None:
        s = self._state
        if s.stage is Stage.ACTIVE:
            _wrong_stage("the number is already active: terminate the service instead")
        if s.stage is Stage.CLOSED:
            _wrong_stage(f"the registration is already closed ({s.status.value})")

    def _claim(self, kind: str, message: str) -> None:
        # Validators already refuse a second claim; this covers replay, where
        # validators do not run, and keeps the handler safe on its own.
        if kind in self._claims:
            if kind in (_DECISION, _VERIFICATION):
                _already_decided(message)
            _wrong_stage(message)
        self._claims.add(kind)

    def _check_status(self, wanted: Status, what: str) -> None:
        status = self._state.status
        if status is not wanted:
            _wrong_stage(f"not waiting for {what} (status {status.value})")

    # ---------------------------------------------------------------- Query

    def _serving(self, update: str) -> ServiceFlow:
        """The service that takes the service's Updates (``ServiceUpdates``), from ACTIVE on."""
        if self._service is None:
            if self._state.stage is Stage.ACTIVATE:
                raise ApplicationError(
                    f"the number is being activated: {update!r} is possible in a moment",
                    type=ERR_ACTIVATING,
                    non_retryable=True,
                )
            _wrong_stage(
                f"the number is not in service: {update!r} is possible once the registration is active "
                f"(it is at {self._state.stage.value})"
            )
        return self._service

    def _refuse_in_service(self, update: str) -> None:
        """Once the run serves the number, the registration's own steps are
        refused as the service workflow refuses them."""
        if self._service is not None:
            self._service.refuse_unknown_update(update)

    @workflow.update(dynamic=True)
    def unknown_update(self, name: str, args: Sequence[RawValue]) -> None:
        """Never runs: its validator refuses every Update not declared here or in ServiceUpdates."""

    @unknown_update.validator
    def _validate_unknown_update(self, name: str, args: Sequence[RawValue]) -> None:
        self._refuse_in_service(name)
        self._serving(name)

    @workflow.query(name=QUERY_STATUS)
    def status(self) -> RegistrationStatus:
        """The registration's status, and from ACTIVE on the service's (a
        ``ServiceStatus``), as the service workflow answers it."""
        if self._service is not None:
            return self._service.status()
        return self._status()

    def _status(self) -> RegistrationStatus:
        s = self._state
        fees = None
        if s.tier is not None and s.min_monthly_spend_fen is not None and s.first_prepayment_fen is not None:
            fees = Fees(
                tier=s.tier,
                min_monthly_spend_fen=s.min_monthly_spend_fen,
                first_prepayment_fen=s.first_prepayment_fen,
            )
        change_request = None
        if s.change_request is not None:
            change_request = ChangeRequest(
                fields=list(s.change_request.fields),
                documents=list(s.change_request.documents),
                reason=s.change_request.reason,
                requested_at=s.change_request.requested_at,
                resubmit_by=s.change_request.resubmit_by,
            )
        rejection = None
        if s.rejection_code is not None:
            rejection = Rejection(reason_code=RejectionReason(s.rejection_code), reason=s.rejection_reason)
        return RegistrationStatus(
            application_id=s.application_id,
            workflow_id=self._workflow_id,
            stage=s.stage,
            status=s.status,
            waiting_for=s.waiting_for,
            next_deadline=s.next_deadline,
            overdue=s.overdue,
            carrier=s.carrier,
            organisation_id=s.organisation_id,
            number=s.number,
            fees=fees,
            paid_fen=s.paid_fen,
            change_request=change_request,
            rejection=rejection,
            problems=[FieldProblem.model_validate(p) for p in s.problems],
            activation_at=s.activation_at,
            activated_at=s.activated_at,
            last_event_version=s.version,
            updated_at=s.updated_at,
            next_deadline_kind=s.next_deadline_kind,
            refund_owed_fen=s.refund_owed_fen,
        )

    def _publish(self) -> None:
        """Keep the search attributes the Temporal UI filters on current.

        Called where the workflow is about to wait (and at its end), so that
        several transitions in one workflow task make one upsert, and only of the
        attributes that changed: every upsert is a history event and a
        visibility write on the server.
        """
        s = self._state
        wanted: dict[str, Any] = {
            STAGE.name: s.stage.value,
            CARRIER.name: s.carrier,
            ORGANISATION.name: s.organisation_id,
            OVERDUE.name: s.overdue,
            NEXT_DEADLINE.name: s.next_deadline,
            SERVICE_NUMBER.name: s.number,
            LIFECYCLE.name: lifecycle_of(s.stage, s.status).value,
        }
        changed = [name for name, value in wanted.items() if self._published.get(name, _UNSET) != value]
        if not changed:
            return
        updates: list[SearchAttributeUpdate[Any]] = []
        for key in (STAGE, CARRIER, ORGANISATION, OVERDUE, NEXT_DEADLINE, SERVICE_NUMBER, LIFECYCLE):
            if key.name in changed:
                value = wanted[key.name]
                updates.append(key.value_set(value) if value is not None else key.value_unset())
                self._published[key.name] = value
        workflow.upsert_search_attributes(updates)


def carrier_backoff(timings: RegistrationTimings, attempt: int) -> timedelta:
    """The wait after failed carrier call ``attempt`` (1 for the first): doubling
    from ``carrier_retry_initial``, at most ``carrier_retry_max_interval``. The
    doubling stops at the cap, so no number of attempts can overflow it."""
    cap = timings.carrier_retry_max_interval
    wait = timings.carrier_retry_initial
    for _ in range(attempt - 1):
        if wait <= timedelta(0) or wait >= cap:
            break
        wait *= 2
    return min(wait, cap)


def _worth_retrying(err: FailureError) -> bool:
    """A carrier call that failed for a passing reason: unavailable, timed out.
    (The application error a local activity raised comes unwrapped; a timeout or
    a cancellation comes as the cause of an ActivityError.)"""
    cause = _cause(err)
    if isinstance(cause, ApplicationError):
        return not cause.non_retryable and cause.type != ERR_CARRIER_REJECTED
    return isinstance(cause, CallTimedOut)


def _cause(err: BaseException) -> BaseException | None:
    return err.cause if isinstance(err, ActivityError) else err


def _failure_message(failure: BaseException | None) -> str:
    cause = _cause(failure) if failure is not None else None
    if isinstance(cause, ApplicationError):
        return f"carrier: {cause.message}"
    return "carrier provisioning failed"

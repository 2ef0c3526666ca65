"""The service workflow's logic: a registration's life after ACTIVE.

``workflows/service.py`` declares the Temporal workflow (its name, Updates and
Query) and delegates every call to ``ServiceFlow`` here. As with the
registration (see ``workflows/registration.py`` for why), the workflow runs
outside the SDK's sandbox: this module is loaded once and shared by the many
thousands of sleeping service workflows one worker holds. It holds no
module-level state and must not read the clock, randomness or do I/O except
through ``workflow.*`` (tests/workflows/test_determinism_guard.py checks).

It continues the registration under the same workflow id and runs for as long
as the number is in service, which is years: first in the registration's own
run, which carries on as the service at ACTIVE, then as ``ServiceWorkflow``
(see ``workflows/service.py``).

How it is put together:

* All rules are in ``domain.service_rules``: the workflow holds one
  ``ServiceRecord`` and asks the rules what a deadline or an Update changes.
  Each ``Change`` they return is carried out by one activity (carrier, inventory,
  event), in order.
* The main loop sleeps until the next deadline (billing, an arrears or real-name
  stage, the end of quarantine) or until an Update moves the record, whichever
  is first, then takes whatever is due. Updates and the loop change the record
  under one lock, so changes are applied one at a time and in order.
* History stays bounded: after ``ServiceInput.cycles_per_run`` billing cycles
  (a year by default) the workflow continues as new, carrying the whole record,
  so a run holds at most about a hundred events. It also does when Temporal
  suggests it or the run's history passes ``ServiceInput.history_limit`` (a
  burst of Updates). Update handlers are drained first.
* When the quarantine after reclaim or termination is over the number is
  released and the workflow completes.

Only ``workflow.now()`` is used for time, and every duration comes from the
input (resolved from settings when the registration started).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeUpdate
from temporalio.exceptions import ApplicationError

from activities.service import ApplyServiceChange, ServiceActivities, ServiceChangeResult, ServiceView
from domain import service_rules as rules
from domain.lifecycle import lifecycle_of, service_stage_status
from domain.service_rules import (
    ArrearsStage,
    ChangeKind,
    Outcome,
    RealnameStage,
    ServiceRecord,
    ServiceRuleError,
    ServiceState,
)
from domain.timeline import NextDeadlineKind, Stage, Status
from workflows.contracts import (
    ERR_INVALID_REQUEST,
    ERR_WRONG_STAGE,
    Actor,
    ActorRole,
    PaymentRequest,
    RegistrationStatus,
    WaitingFor,
    registration_workflow_id,
)
from workflows.search_attributes import LIFECYCLE, NEXT_DEADLINE, OVERDUE, STAGE
from workflows.service_contracts import (
    SERVICE_WORKFLOW_NAME,
    DetailsChangeReport,
    DetailsChangeResult,
    OperatorAction,
    RealnameConfirmation,
    ServiceInput,
    ServicePaymentResult,
    ServiceResult,
    ServiceStatus,
    TerminationRequest,
)

# Event ids are derived, not drawn: the same change of the same registration
# always gets the same id, whichever run or worker carries it out.
_EVENT_NAMESPACE = uuid.UUID("6f0d3a52-8c1e-4b7e-9a55-0c4e1d2b7f31")

_DB_TIMEOUT = timedelta(seconds=30)
# A decided change has to land: database hiccups are retried without limit.
_DB_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=30))

_T = TypeVar("_T")


def _rule_error(exc: ServiceRuleError) -> NoReturn:
    kind = ERR_WRONG_STAGE if exc.code == ServiceRuleError.WRONG_STATE else ERR_INVALID_REQUEST
    raise ApplicationError(exc.message, type=kind, non_retryable=True) from exc


def _checked(fn: Callable[[], _T]) -> _T:
    try:
        return fn()
    except ServiceRuleError as exc:
        _rule_error(exc)


def _require_role(actor: Actor, roles: tuple[ActorRole, ...], what: str) -> None:
    if actor.role not in roles:
        allowed = " or ".join(r.value for r in roles)
        raise ApplicationError(
            f"only an {allowed} may {what} (got {actor.role.value})",
            type=ERR_INVALID_REQUEST,
            non_retryable=True,
        )


def _actor(actor: Actor) -> rules.Actor:
    return rules.Actor(actor.id, actor.role.value)


class ServiceFlow:
    """One registration's service state and behaviour, driven by ServiceWorkflow
    and, in its first run, by the registration's run (RegistrationWorkflow)."""

    def __init__(self, inp: ServiceInput) -> None:
        self._inp = inp
        self._durations = inp.durations
        self._record: ServiceRecord = inp.record
        self._lock = asyncio.Lock()
        # Bumped whenever the record moves, so the main loop re-plans its sleep.
        self._moves = 0
        self._bills_this_run = 0
        # The pending timer and the instant it fires at (see _sleep).
        self._timer: asyncio.Future[None] | None = None
        self._timer_at: datetime | None = None

    # ------------------------------------------------------------------ run

    async def run(self) -> ServiceResult:
        self._publish()
        while True:
            async with self._lock:
                await self._commit(rules.advance(self._record, workflow.now(), self._durations))
            if self._record.state is ServiceState.RELEASED:
                await workflow.wait_condition(workflow.all_handlers_finished)
                return self._result()
            if self._should_continue():
                # Updates still running belong to this run: let them answer,
                # then carry their effect over in the record.
                await workflow.wait_condition(workflow.all_handlers_finished)
                # Named: the first run may be the registration's, carrying on at ACTIVE.
                workflow.continue_as_new(
                    args=[self._inp.model_copy(update={"record": self._record, "run": self._inp.run + 1})],
                    workflow=SERVICE_WORKFLOW_NAME,
                )
            await self._sleep()

    async def _sleep(self) -> None:
        """Until the next deadline, or until an Update moves the record, or until
        history says it is time to continue as new.

        A timer is never cancelled: when an Update wakes the loop first, the
        timer keeps running and is reused, or, if the deadline moved later,
        left to fire into a wake-up that finds nothing due. Cancelling costs a
        history event per Update, and the time-skipping test server strands a
        run whose task cancels a timer that fired meanwhile (sdk-java#3088)."""
        moves = self._moves
        due = rules.next_deadline(self._record, self._durations)
        if due is not None:
            delay = due.at - workflow.now()
            if delay <= timedelta(0):
                return
            if self._timer is None or self._timer.done() or self._timer_at is None or self._timer_at > due.at:
                self._timer = asyncio.ensure_future(workflow.sleep(delay))
                self._timer_at = due.at
        timer = self._timer if due is not None else None
        await workflow.wait_condition(
            lambda: self._moves != moves or (timer is not None and timer.done()) or self._should_continue()
        )

    def _should_continue(self) -> bool:
        info = workflow.info()
        return (
            self._bills_this_run >= self._inp.cycles_per_run
            or info.is_continue_as_new_suggested()
            or info.get_current_history_length() >= self._inp.history_limit
        )

    def _result(self) -> ServiceResult:
        closure = self._record.closure
        assert closure is not None and closure.released_at is not None
        return ServiceResult(
            application_id=self._inp.application_id,
            outcome=closure.reason.value,
            number=self._inp.number,
            released_at=closure.released_at,
            balance_fen=self._record.balance_fen,
            status=self._status(),
        )

    # --------------------------------------------------------------- changes

    async def _commit(
        self, outcome: Outcome, correlation_id: str | None = None, *, from_update: bool = False
    ) -> None:
        """Adopt the new record, then carry out its changes one by one, in order.

        A change an Update asked for (``from_update``) is carried out by a regular
        activity, recorded in history when it is scheduled: a worker that dies
        after its commit cannot leave a replay free to decide another change in
        its place (another Update first), since the replay must schedule the
        same one. Changes the deadlines bring (``rules.advance``) stay local
        activities: the same record and deadlines decide the same change again."""
        if not outcome.changes:
            return
        self._record = outcome.record
        self._moves += 1
        view = self._view()
        for change in outcome.changes:
            cmd = ApplyServiceChange(
                application_id=self._inp.application_id,
                number=self._inp.number,
                carrier=self._inp.carrier,
                correlation_id=correlation_id or self._inp.correlation_id,
                event_id=self._event_id(change.seq),
                change=change,
                view=view,
            )
            result: ServiceChangeResult
            if change.carrier_action is None and not from_update:
                result = await workflow.execute_local_activity_method(
                    ServiceActivities.apply_change,
                    cmd,
                    start_to_close_timeout=_DB_TIMEOUT,
                    retry_policy=_DB_RETRY,
                )
            else:
                retry = self._inp.retry
                result = await workflow.execute_activity_method(
                    ServiceActivities.apply_change,
                    cmd,
                    start_to_close_timeout=retry.call_timeout + _DB_TIMEOUT,
                    retry_policy=RetryPolicy(
                        initial_interval=retry.initial_interval,
                        backoff_coefficient=2.0,
                        maximum_interval=retry.max_interval,
                    ),
                )
            if result.carrier_refused:
                workflow.logger.error(
                    "carrier refused %s for %s: %s",
                    change.carrier_action,
                    self._inp.number,
                    result.carrier_refused,
                )
            if change.kind is ChangeKind.BILLED:
                self._bills_this_run += 1
        self._publish()

    def _event_id(self, seq: int) -> str:
        return str(uuid.uuid5(_EVENT_NAMESPACE, f"{self._inp.application_id}/service/{seq}"))

    def _view(self) -> ServiceView:
        r = self._record
        # The nearest deadline of any kind, the next bill included: what the
        # holder has to act on next.
        due = rules.next_deadline(r, self._durations)
        return ServiceView(
            service_state=r.state,
            arrears_stage=r.arrears_stage,
            realname_stage=r.realname_stage,
            realname_due_at=r.realname_due_at if not r.closed else None,
            balance_fen=r.balance_fen,
            next_deadline=due.at if due else None,
            next_deadline_kind=due.kind if due else None,
            overdue=self._overdue(),
            closure=r.closure.reason if r.closure else None,
            details=r.details,
        )

    @property
    def _closure(self) -> rules.ClosureReason | None:
        closure = self._record.closure
        return closure.reason if closure is not None else None

    def _overdue(self) -> bool:
        r = self._record
        return not r.closed and (
            r.arrears_stage is not ArrearsStage.NONE or r.realname_stage is not RealnameStage.CURRENT
        )

    def _publish(self) -> None:
        """Keep the search attributes current; only what changed, since each
        upsert is a history event and a visibility write, and the common case
        (a bill) changes none. ``NextDeadline`` leaves the monthly bill out: on
        every number it would bury the deadlines that matter."""
        due = rules.next_compliance_deadline(self._record, self._durations)
        current = workflow.info().typed_search_attributes
        updates: list[SearchAttributeUpdate[Any]] = []
        stage, status = service_stage_status(self._closure)
        lifecycle = lifecycle_of(stage, status, self._record.state, self._closure).value
        if current.get(STAGE) != stage.value:
            updates.append(STAGE.value_set(stage.value))
        if current.get(LIFECYCLE) != lifecycle:
            updates.append(LIFECYCLE.value_set(lifecycle))
        overdue = self._overdue()
        if current.get(OVERDUE) != overdue:
            updates.append(OVERDUE.value_set(overdue))
        if due is None:
            if current.get(NEXT_DEADLINE) is not None:
                updates.append(NEXT_DEADLINE.value_unset())
        elif current.get(NEXT_DEADLINE) != due.at:
            updates.append(NEXT_DEADLINE.value_set(due.at))
        if updates:
            workflow.upsert_search_attributes(updates)

    # --------------------------------------------------------------- Updates

    async def pay(self, req: PaymentRequest) -> ServicePaymentResult:
        async with self._lock:
            await self._catch_up()
            accepted = not rules.is_duplicate_payment(self._record, req.payment_id)
            if accepted:
                outcome = _checked(
                    lambda: rules.pay(
                        self._record, workflow.now(), req.payment_id, req.amount_fen, _actor(req.actor)
                    )
                )
                await self._commit(outcome, req.correlation_id, from_update=True)
            return ServicePaymentResult(
                payment_id=req.payment_id,
                accepted=accepted,
                balance_fen=self._record.balance_fen,
                status=self._status(),
            )

    def validate_pay(self, req: PaymentRequest) -> None:
        if rules.is_duplicate_payment(self._record, req.payment_id):
            return  # answered with accepted=False, never counted twice
        _checked(lambda: rules.check_pay(self._record, req.payment_id, req.amount_fen))

    async def operator_suspend(self, req: OperatorAction) -> ServiceStatus:
        async with self._lock:
            await self._catch_up()
            outcome = _checked(
                lambda: rules.operator_suspend(self._record, workflow.now(), _actor(req.operator), req.reason)
            )
            await self._commit(outcome, req.correlation_id, from_update=True)
            return self._status()

    def validate_operator_suspend(self, req: OperatorAction) -> None:
        _require_role(req.operator, (ActorRole.OPERATOR,), "suspend a number")
        _checked(lambda: rules.check_operator_suspend(self._record, req.reason))

    async def operator_resume(self, req: OperatorAction) -> ServiceStatus:
        async with self._lock:
            await self._catch_up()
            outcome = _checked(
                lambda: rules.operator_resume(self._record, workflow.now(), _actor(req.operator), req.reason)
            )
            await self._commit(outcome, req.correlation_id, from_update=True)
            return self._status()

    def validate_operator_resume(self, req: OperatorAction) -> None:
        _require_role(req.operator, (ActorRole.OPERATOR,), "resume a number")
        _checked(lambda: rules.check_operator_resume(self._record, req.reason))

    async def terminate(self, req: TerminationRequest) -> ServiceStatus:
        async with self._lock:
            await self._catch_up()
            outcome = _checked(
                lambda: rules.terminate(
                    self._record, workflow.now(), _actor(req.actor), req.reason, self._durations
                )
            )
            await self._commit(outcome, req.correlation_id, from_update=True)
            return self._status()

    def validate_terminate(self, req: TerminationRequest) -> None:
        _require_role(req.actor, (ActorRole.APPLICANT, ActorRole.OPERATOR), "terminate a number")
        _checked(lambda: rules.check_terminate(self._record))

    async def report_details_change(self, req: DetailsChangeReport) -> DetailsChangeResult:
        async with self._lock:
            await self._catch_up()
            now = workflow.now()
            due = _checked(lambda: self._details_due(req.changed_at))
            outcome = _checked(
                lambda: rules.report_details_change(
                    self._record,
                    now,
                    _actor(req.actor),
                    req.changed_at,
                    req.fields,
                    self._durations,
                    values=req.values,
                    due=due,
                )
            )
            await self._commit(outcome, req.correlation_id, from_update=True)
            return DetailsChangeResult(due_by=due, late=now > due, status=self._status())

    def _details_due(self, changed_at: datetime) -> datetime:
        """When a change of details made at ``changed_at`` is due to be reported."""
        return rules.details_change_due(changed_at, self._durations)

    def validate_report_details_change(self, req: DetailsChangeReport) -> None:
        _require_role(req.actor, (ActorRole.APPLICANT, ActorRole.OPERATOR), "report a change of details")
        now = workflow.now()
        _checked(
            lambda: rules.check_report_details_change(
                self._record, now, req.changed_at, req.fields, self._durations
            )
        )

    async def confirm_realname(self, req: RealnameConfirmation) -> ServiceStatus:
        async with self._lock:
            await self._catch_up()
            outcome = _checked(
                lambda: rules.confirm_realname(
                    self._record, workflow.now(), _actor(req.operator), req.reason, self._durations
                )
            )
            await self._commit(outcome, req.correlation_id, from_update=True)
            return self._status()

    def validate_confirm_realname(self, req: RealnameConfirmation) -> None:
        _require_role(req.operator, (ActorRole.OPERATOR,), "confirm real-name registration")
        _checked(lambda: rules.check_confirm_realname(self._record, req.reason))

    async def _catch_up(self) -> None:
        # A deadline due at this very instant is taken before the Update, as the
        # main loop would have had it woken a moment earlier.
        await self._commit(rules.advance(self._record, workflow.now(), self._durations))

    # ---------------------------------------------------------------- Query

    def refuse_unknown_update(self, name: str) -> NoReturn:
        """Validator for every Update this workflow has no handler for: above all
        the registration's (decide, verify, withdraw, ...), over once the number is
        in service. Refused in words a caller can act on, not the SDK's."""
        closure = self._record.closure
        if closure is None:
            where = f"the number is in service ({self._record.state.value})"
        else:
            how = "terminated" if closure.reason is rules.ClosureReason.TERMINATED else "reclaimed"
            if closure.released_at is not None:
                where = f"the number was {how} and has been released"
            else:
                until = closure.quarantine_until.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                where = f"the number was {how} and is in quarantine until {until}"
        raise ApplicationError(
            f"the registration's steps are over: {where}, so {name!r} no longer applies",
            type=ERR_WRONG_STAGE,
            non_retryable=True,
        )

    def status(self) -> ServiceStatus:
        return self._status()

    def _status(self) -> ServiceStatus:
        r = self._record
        inp = self._inp
        base = inp.registration or RegistrationStatus(
            application_id=inp.application_id,
            workflow_id=registration_workflow_id(inp.application_id),
            stage=Stage.ACTIVE,
            status=Status.ACTIVE,
            waiting_for=WaitingFor.NOTHING,
            carrier=inp.carrier,
            organisation_id=inp.organisation_id,
            number=inp.number,
        )
        due = rules.next_deadline(r, self._durations)
        if r.closed:
            waiting = WaitingFor.NOTHING
        elif r.arrears_stage is not ArrearsStage.NONE:
            waiting = WaitingFor.PREPAYMENT  # a payment that settles the balance
        elif r.realname_stage is not RealnameStage.CURRENT:
            waiting = WaitingFor.VERIFICATION
        elif r.operator_hold is not None:
            waiting = WaitingFor.OPERATOR_DECISION
        else:
            waiting = WaitingFor.NOTHING
        stage, status = service_stage_status(self._closure)
        return ServiceStatus(
            **base.model_dump(
                exclude={"waiting_for", "next_deadline", "next_deadline_kind", "overdue", "stage", "status"}
            ),
            stage=stage,
            status=status,
            waiting_for=waiting,
            next_deadline=due.at if due else None,
            next_deadline_kind=NextDeadlineKind(due.kind.value) if due else None,
            overdue=self._overdue(),
            service_state=r.state,
            balance_fen=r.balance_fen,
            min_monthly_spend_fen=r.min_monthly_spend_fen,
            arrears_stage=r.arrears_stage,
            arrears_stage_since=r.arrears_stage_at if r.arrears_stage is not ArrearsStage.NONE else None,
            realname_stage=r.realname_stage,
            realname_due_at=r.realname_due_at,
            next_bill_at=None if r.closed else rules.next_bill_at(r, self._durations),
            cycle_number=r.cycle_number,
            cycle_start=r.cycle_start,
            total_charged_fen=r.total_charged_fen,
            total_paid_fen=r.total_paid_fen,
            operator_hold=r.operator_hold,
            closure=r.closure,
            late_details_reports=r.late_details_reports,
            current_details=r.details,
            change_seq=r.seq,
            run=inp.run,
        )

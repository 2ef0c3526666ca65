"""The registration workflow on the time-skipping server: every path, every deadline."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
from temporalio.client import WorkflowFailureError, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError, CancelledError
from temporalio.testing import WorkflowEnvironment

from domain.lifecycle import lifecycle_of
from domain.service_rules import ServiceState
from domain.timeline import Event, EventType, RegistrationState, fold
from tests.domain.factories import LEGAL_REP_ID, document_dict
from tests.workflows import support as s
from workflows.contracts import (
    ERR_ACTIVATING,
    ERR_ALREADY_DECIDED,
    ERR_INVALID_APPLICATION,
    ERR_WRONG_STAGE,
    Decision,
    DecisionRequest,
    PaymentRequest,
    RegistrationResult,
    RegistrationStatus,
    RegistrationTimings,
    RejectionReason,
    Stage,
    Status,
    VerificationOutcome,
    WaitingFor,
)
from workflows.registration import carrier_backoff
from workflows.service_contracts import (
    QUERY_SERVICE_STATUS,
    UPDATE_SERVICE_PAY,
    ServicePaymentResult,
    ServiceStatus,
)

pytestmark = pytest.mark.asyncio


# ---------------------------------------------------------------------- helpers


async def consistent(pool: asyncpg.Pool, handle: s.Handle) -> RegistrationState:
    """The read model and the live Query agree with the fold of the event log."""
    events = await s.stream(pool, s.app_id(handle))
    assert [e.version for e in events] == list(range(1, len(events) + 1))
    assert len({e.event_id for e in events}) == len(events)
    state = fold(events)
    assert state is not None
    row = await s.read_model(pool, s.app_id(handle))
    assert row is not None
    assert (row["stage"], row["status"], row["waiting_for"]) == (
        state.stage.value,
        state.status.value,
        state.waiting_for.value,
    )
    assert (row["number"], row["overdue"], row["next_deadline"], row["last_event_version"]) == (
        state.number,
        state.overdue,
        state.next_deadline,
        state.version,
    )
    assert (row["first_prepayment_fen"], row["balance_fen"]) == (state.first_prepayment_fen, state.paid_fen)
    assert (row["lifecycle"], row["next_deadline_kind"]) == (
        lifecycle_of(state.stage, state.status).value,
        state.next_deadline_kind,
    )
    live = await s.query_status(handle)
    # From ACTIVE on the service workflow answers; its first deadline (the
    # first bill) is the one activation recorded.
    assert (live.stage, live.status, live.last_event_version, live.next_deadline) == (
        state.stage,
        state.status,
        state.version,
        state.next_deadline,
    )
    if state.stage is Stage.ACTIVE:
        assert state.next_deadline is not None and state.next_deadline_kind == "billing"
        service = await handle.query(QUERY_SERVICE_STATUS, result_type=ServiceStatus)
        assert (service.service_state, service.realname_due_at, service.next_bill_at) == (
            ServiceState.ACTIVE,
            state.realname_due_at,
            state.next_deadline,
        )
        assert (row["service_state"], row["realname_due_at"]) == ("active", state.realname_due_at)
    else:
        assert row["service_state"] is None
    return state


async def event_types(pool: asyncpg.Pool, handle: s.Handle) -> list[EventType]:
    return [e.event_type for e in await s.stream(pool, s.app_id(handle))]


async def assert_released(pool: asyncpg.Pool, number: str) -> None:
    row = await s.number_row(pool, number)
    assert (row["status"], row["registration_id"]) == ("available", None)


async def closed_with(handle: s.Handle, status: Status) -> RegistrationResult:
    result = await s.result(handle)
    assert (result.outcome, result.status.stage, result.status.status) == ("closed", Stage.CLOSED, status)
    return result


def update_error(exc: BaseException) -> ApplicationError:
    assert isinstance(exc, WorkflowUpdateFailedError), exc
    assert isinstance(exc.cause, ApplicationError), exc.cause
    return exc.cause


async def now(env: WorkflowEnvironment) -> Any:
    return await env.get_current_time()


async def sleep_until(env: WorkflowEnvironment, moment: Any) -> None:
    delta = moment - await now(env)
    if delta > timedelta(0):
        await env.sleep(delta)


# ------------------------------------------------------------------ happy path


async def test_a_registration_goes_from_apply_to_active(env: WorkflowEnvironment, pool, task_queue) -> None:
    number = await s.fresh_number(pool)
    handle = await s.start(env.client, task_queue, s.application(number))

    status = await s.submitted(handle)
    assert (status.stage, status.status, status.waiting_for) == (
        Stage.AUDIT,
        Status.IN_REVIEW,
        WaitingFor.OPERATOR_DECISION,
    )
    assert status.number == number and status.next_deadline is not None
    assert (await s.number_row(pool, number))["status"] == "held"

    status = await s.approve(handle)
    assert (status.stage, status.waiting_for) == (Stage.ALLOCATE, WaitingFor.PREPAYMENT)
    assert status.fees is not None
    # An economy number: 3 months of its spend is below the CNY 600 floor.
    assert status.fees.first_prepayment_fen == max(3 * status.fees.min_monthly_spend_fen, 60_000)
    assert (await s.number_row(pool, number))["status"] == "allocated"

    paid = await s.pay(handle, status.fees.first_prepayment_fen)
    assert paid.paid_in_full and paid.status.stage is Stage.VERIFY

    status = await s.verify(handle)
    result = await s.active(env, handle)

    assert (result.status.stage, result.status.status, result.status.waiting_for) == (
        Stage.ACTIVE,
        Status.ACTIVE,
        WaitingFor.NOTHING,
    )
    assert result.status.activated_at is not None
    assert (await s.number_row(pool, number))["status"] == "active"
    assert await event_types(pool, handle) == [
        EventType.APPLICATION_SUBMITTED,
        EventType.APPLICATION_APPROVED,
        EventType.PAYMENT_RECEIVED,
        EventType.VERIFICATION_PASSED,
        EventType.NUMBER_ACTIVATED,
    ]
    events = await s.stream(pool, s.app_id(handle))
    assert [(e.actor, e.actor_role.value) for e in events] == [
        ("key_acme", "applicant"),
        ("op_wang", "operator"),
        ("key_acme", "applicant"),
        ("op_wang", "operator"),
        ("system", "system"),
    ]
    assert all(e.correlation_id == f"corr-{s.app_id(handle)}" for e in events)
    await consistent(pool, handle)
    order = await s.carrier_order(pool, s.app_id(handle))
    assert order is not None and (order.status, order.provisions) == ("provisioned", 1)


async def test_a_decision_sent_with_the_start_waits_for_the_apply_step(env, pool, task_queue) -> None:
    number = await s.fresh_number(pool)
    handle = await s.start(env.client, task_queue, s.application(number))
    status = await s.approve(handle)
    assert (status.stage, status.number) == (Stage.ALLOCATE, number)
    await s.withdraw(handle)


async def test_a_decision_on_a_refused_application_is_refused(env, pool, task_queue) -> None:
    number = await s.fresh_number(pool)
    handle = await s.start(env.client, task_queue, s.application(number, documents=[]))
    with pytest.raises(WorkflowUpdateFailedError) as caught:
        await s.approve(handle)
    err = update_error(caught.value)
    assert err.type == ERR_WRONG_STAGE and "invalid" in err.message


async def test_a_number_is_picked_by_criteria(env: WorkflowEnvironment, pool, task_queue) -> None:
    number = await s.fresh_number(pool)
    form = s.application(None, number_criteria={"ends_with": number[3:]})
    handle = await s.start(env.client, task_queue, form)
    status = await s.submitted(handle)
    assert status.number == number
    await s.withdraw(handle)
    await s.result(handle)
    await assert_released(pool, number)


# ------------------------------------------------------------------ apply


async def test_an_invalid_application_is_refused_and_holds_nothing(env, pool, task_queue) -> None:
    number = await s.fresh_number(pool)
    form = s.application(number, documents=[document_dict("business_licence")])
    handle = await s.start(env.client, task_queue, form)
    status = await s.submitted(handle)
    assert (status.stage, status.status) == (Stage.CLOSED, Status.INVALID)
    assert {p.code for p in status.problems} == {"missing_document"}
    await closed_with(handle, Status.INVALID)
    await assert_released(pool, number)
    assert await event_types(pool, handle) == [EventType.APPLICATION_REFUSED]
    await consistent(pool, handle)


async def test_a_number_held_by_another_application_is_unavailable(env, pool, task_queue) -> None:
    number = await s.fresh_number(pool)
    first = await s.start(env.client, task_queue, s.application(number))
    await s.submitted(first)
    second = await s.start(env.client, task_queue, s.application(number))
    status = await s.submitted(second)
    assert status.status is Status.NUMBER_UNAVAILABLE
    await closed_with(second, Status.NUMBER_UNAVAILABLE)
    row = await s.number_row(pool, number)
    assert row["registration_id"] == s.app_id(first), (
        "the refused application must not release another's hold"
    )
    await s.withdraw(first)
    await s.result(first)


async def test_a_number_of_another_carrier_is_refused(env, pool, task_queue) -> None:
    number = await s.fresh_number(pool)
    form = s.application(number, carrier="china_unicom")
    handle = await s.start(env.client, task_queue, form)
    status = await s.submitted(handle)
    assert status.status is Status.INVALID
    assert [p.code for p in status.problems] == ["carrier_mismatch"]
    await assert_released(pool, number)


# ------------------------------------------------------------------ audit


async def test_rejection_is_final_coded_and_releases(env, pool, task_queue) -> None:
    number = await s.fresh_number(pool)
    handle = await s.start(env.client, task_queue, s.application(number))
    await s.submitted(handle)
    status = await s.reject(handle, RejectionReason.IDENTITY_MISMATCH)
    assert status.rejection is not None
    assert status.rejection.reason_code is RejectionReason.IDENTITY_MISMATCH
    result = await closed_with(handle, Status.REJECTED)
    assert result.status.rejection == status.rejection
    await assert_released(pool, number)
    state = await consistent(pool, handle)
    assert state.rejection_code == "identity_mismatch"


async def test_a_rejection_needs_a_reason_code() -> None:
    with pytest.raises(ValueError, match="reason_code"):
        DecisionRequest(decision=Decision.REJECT, operator=s.OPERATOR)
    with pytest.raises(ValueError, match="fields or documents"):
        DecisionRequest(decision=Decision.REQUEST_CHANGES, operator=s.OPERATOR)


async def test_changes_requested_then_resubmitted_in_time(env, pool, task_queue) -> None:
    number = await s.fresh_number(pool)
    handle = await s.start(env.client, task_queue, s.application(number))
    await s.submitted(handle)
    status = await s.request_changes(handle)
    assert (status.status, status.waiting_for) == (Status.CHANGES_REQUESTED, WaitingFor.RESUBMISSION)
    assert status.change_request is not None
    assert status.change_request.fields == ["contact_address"]
    assert status.next_deadline == status.change_request.resubmit_by
    # Five working days are at least a week minus a day: not firing an hour early.
    assert status.change_request.resubmit_by - status.change_request.requested_at >= timedelta(days=5)

    await sleep_until(env, status.change_request.resubmit_by - timedelta(hours=1))
    corrected = s.corrected(number, company_name="新示例科技")
    status = await s.resubmit(handle, corrected)
    assert (status.status, status.change_request) == (Status.IN_REVIEW, None)
    row = await s.read_model(pool, s.app_id(handle))
    assert row is not None and row["company_name"] == "新示例科技"
    await s.approve(handle)
    await consistent(pool, handle)
    await s.withdraw(handle)


async def test_no_resubmission_within_five_working_days_abandons(env, pool, task_queue) -> None:
    number = await s.fresh_number(pool)
    handle = await s.start(env.client, task_queue, s.application(number))
    await s.submitted(handle)
    status = await s.request_changes(handle)
    assert status.change_request is not None
    result = await closed_with(handle, Status.ABANDONED)
    assert result.status.updated_at is not None
    assert result.status.updated_at >= status.change_request.resubmit_by
    await assert_released(pool, number)
    assert (await event_types(pool, handle))[-1] is EventType.APPLICATION_ABANDONED
    await consistent(pool, handle)


async def test_an_invalid_resubmission_is_refused_and_the_window_stays_open(env, pool, task_queue) -> None:
    number = await s.fresh_number(pool)
    handle = await s.start(env.client, task_queue, s.application(number))
    await s.submitted(handle)
    await s.request_changes(handle)

    broken = s.corrected(number, documents=[])
    with pytest.raises(WorkflowUpdateFailedError) as caught:
        await s.resubmit(handle, broken)
    err = update_error(caught.value)
    assert err.type == ERR_INVALID_APPLICATION
    problems = err.details[0]
    assert {p["code"] for p in problems} == {"missing_document"}

    other_carrier = s.corrected(number, carrier="china_unicom")
    with pytest.raises(WorkflowUpdateFailedError) as caught:
        await s.resubmit(handle, other_carrier)
    assert ("carrier", "cannot_change") in {
        (p["field"], p["code"]) for p in update_error(caught.value).details[0]
    }

    status = await s.query_status(handle)
    assert status.status is Status.CHANGES_REQUESTED
    assert await event_types(pool, handle) == [EventType.APPLICATION_SUBMITTED, EventType.CHANGES_REQUESTED]
    await s.withdraw(handle)


async def test_past_the_review_target_it_is_overdue_and_keeps_waiting(env, pool, task_queue) -> None:
    number = await s.fresh_number(pool)
    handle = await s.start(env.client, task_queue, s.application(number))
    status = await s.submitted(handle)
    assert status.next_deadline is not None and not status.overdue

    await sleep_until(env, status.next_deadline + timedelta(minutes=1))
    status = await s.query_status(handle)
    assert (status.status, status.overdue) == (Status.IN_REVIEW, True)
    row = await s.read_model(pool, s.app_id(handle))
    assert row is not None and row["overdue"] is True
    assert (await event_types(pool, handle))[-1] is EventType.REVIEW_OVERDUE

    # Still waiting, and the held number is kept (its lease renewed) well past the hold lease.
    await env.sleep(timedelta(days=10))
    assert (await s.number_row(pool, number))["status"] == "held"
    status = await s.approve(handle)
    assert (status.stage, status.overdue) == (Stage.ALLOCATE, False)
    await consistent(pool, handle)
    await s.withdraw(handle)


async def test_a_decision_within_the_review_target_is_not_overdue(env, pool, task_queue) -> None:
    number = await s.fresh_number(pool)
    handle = await s.start(env.client, task_queue, s.application(number))
    status = await s.submitted(handle)
    assert status.next_deadline is not None
    await sleep_until(env, status.next_deadline - timedelta(hours=1))
    status = await s.approve(handle)
    assert not status.overdue
    assert EventType.REVIEW_OVERDUE not in await event_types(pool, handle)
    await s.withdraw(handle)


async def test_the_hold_lease_is_renewed_while_the_audit_lasts(env, pool, task_queue) -> None:
    number = await s.fresh_number(pool)
    handle = await s.start(
        env.client, task_queue, s.application(number), timings=s.fast_timings(hold_lease=timedelta(hours=6))
    )
    await s.submitted(handle)
    first_expiry = (await s.number_row(pool, number))["hold_expires_at"]
    await env.sleep(timedelta(days=2))
    row = await s.number_row(pool, number)
    assert row["status"] == "held" and row["registration_id"] == s.app_id(handle)
    assert row["hold_expires_at"] > first_expiry + timedelta(days=1)
    await s.withdraw(handle)


# ------------------------------------------------------ concurrent decisions


@pytest.mark.parametrize(
    "second", [Decision.REJECT, Decision.REQUEST_CHANGES, Decision.APPROVE], ids=lambda d: d.value
)
async def test_two_concurrent_decisions_exactly_one_wins(env, pool, task_queue, second: Decision) -> None:
    number = await s.fresh_number(pool)
    handle = await s.start(env.client, task_queue, s.application(number))
    await s.submitted(handle)
    requests = [
        DecisionRequest(decision=Decision.APPROVE, operator=s.OPERATOR),
        DecisionRequest(
            decision=second,
            operator=s.OTHER_OPERATOR,
            reason_code=RejectionReason.DOCUMENTS_INVALID if second is Decision.REJECT else None,
            fields=["contact_address"] if second is Decision.REQUEST_CHANGES else [],
        ),
    ]
    outcomes = await asyncio.gather(*(s.decide(handle, r) for r in requests), return_exceptions=True)
    won = [o for o in outcomes if isinstance(o, RegistrationStatus)]
    lost = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(won) == 1 and len(lost) == 1, outcomes
    err = update_error(lost[0])
    assert err.type == ERR_ALREADY_DECIDED
    assert "already" in err.message
    decisions = [
        t
        for t in await event_types(pool, handle)
        if t in (EventType.APPLICATION_APPROVED, EventType.APPLICATION_REJECTED, EventType.CHANGES_REQUESTED)
    ]
    assert len(decisions) == 1
    await consistent(pool, handle)
    if won[0].stage is not Stage.CLOSED:
        await s.withdraw(handle)


async def test_updates_that_do_not_fit_the_stage_get_a_clear_error(env, pool, task_queue) -> None:
    number = await s.fresh_number(pool)
    handle = await s.start(env.client, task_queue, s.application(number))
    await s.submitted(handle)

    with pytest.raises(WorkflowUpdateFailedError) as caught:
        await s.pay(handle, 60_000)
    assert update_error(caught.value).type == ERR_WRONG_STAGE
    with pytest.raises(WorkflowUpdateFailedError) as caught:
        await s.verify(handle)
    assert update_error(caught.value).type == ERR_WRONG_STAGE
    with pytest.raises(WorkflowUpdateFailedError) as caught:
        await s.resubmit(handle, s.application(number))
    assert update_error(caught.value).type == ERR_WRONG_STAGE

    await s.approve(handle)
    with pytest.raises(WorkflowUpdateFailedError) as caught:
        await s.reject(handle)
    err = update_error(caught.value)
    assert err.type == ERR_ALREADY_DECIDED and "awaiting_prepayment" in err.message
    assert len(await event_types(pool, handle)) == 2, "a refused Update records nothing"
    await s.withdraw(handle)


# ------------------------------------------------------------------ allocate


async def test_prepayment_in_parts_and_a_retried_payment_counts_once(env, pool, task_queue) -> None:
    number = await s.fresh_number(pool)
    handle = await s.start(env.client, task_queue, s.application(number))
    await s.submitted(handle)
    status = await s.approve(handle)
    assert status.fees is not None
    required = status.fees.first_prepayment_fen

    first = await s.pay(handle, required - 100, payment_id="pay-1")
    assert (first.accepted, first.paid_fen, first.paid_in_full) == (True, required - 100, False)
    again = await s.pay(handle, required - 100, payment_id="pay-1")
    assert (again.accepted, again.paid_fen) == (False, required - 100)
    rest = await s.pay(handle, 100, payment_id="pay-2")
    assert (rest.paid_in_full, rest.status.stage) == (True, Stage.VERIFY)
    # A retry of the payment that completed it is still answered, not refused.
    late_retry = await s.pay(handle, 100, payment_id="pay-2")
    assert late_retry.accepted is False and late_retry.paid_fen == required
    assert (await event_types(pool, handle)).count(EventType.PAYMENT_RECEIVED) == 2
    await consistent(pool, handle)
    await s.withdraw(handle)


async def test_unpaid_after_the_window_the_allocation_is_released(env, pool, task_queue) -> None:
    number = await s.fresh_number(pool)
    handle = await s.start(env.client, task_queue, s.application(number))
    await s.submitted(handle)
    status = await s.approve(handle)
    await s.pay(handle, 100)
    result = await closed_with(handle, Status.PREPAYMENT_EXPIRED)
    assert result.status.updated_at is not None and status.next_deadline is not None
    assert result.status.updated_at >= status.next_deadline
    assert result.status.paid_fen == 100
    await assert_released(pool, number)
    await consistent(pool, handle)


async def test_paid_just_before_the_window_closes(env, pool, task_queue) -> None:
    number = await s.fresh_number(pool)
    handle = await s.start(env.client, task_queue, s.application(number))
    await s.submitted(handle)
    status = await s.approve(handle)
    assert status.fees is not None and status.next_deadline is not None
    await sleep_until(env, status.next_deadline - timedelta(minutes=5))
    paid = await s.pay(handle, status.fees.first_prepayment_fen)
    assert paid.status.status is Status.AWAITING_VERIFICATION
    await s.withdraw(handle)


# ------------------------------------------------------------------ verify


async def test_failed_verification_releases(env, pool, task_queue) -> None:
    number = await s.fresh_number(pool)
    handle = await s.start(env.client, task_queue, s.application(number))
    status = await s.submitted(handle)
    status = await s.approve(handle)
    assert status.fees is not None
    await s.pay(handle, status.fees.first_prepayment_fen)
    status = await s.verify(handle, VerificationOutcome.FAIL)
    assert status.status is Status.VERIFICATION_FAILED
    await closed_with(handle, Status.VERIFICATION_FAILED)
    await assert_released(pool, number)
    events = await s.stream(pool, s.app_id(handle))
    assert events[-1].reason == "documents match the holder" and events[-1].actor == "op_wang"


async def test_unverified_after_fifteen_days_is_released(env, pool, task_queue) -> None:
    number = await s.fresh_number(pool)
    handle = await s.start(env.client, task_queue, s.application(number))
    await s.submitted(handle)
    status = await s.approve(handle)
    assert status.fees is not None
    paid = await s.pay(handle, status.fees.first_prepayment_fen)
    assert paid.status.next_deadline is not None and paid.status.updated_at is not None
    assert paid.status.next_deadline - paid.status.updated_at == timedelta(days=15)
    await closed_with(handle, Status.VERIFICATION_EXPIRED)
    await assert_released(pool, number)
    await consistent(pool, handle)


async def test_verified_just_before_the_window_closes(env, pool, task_queue) -> None:
    number = await s.fresh_number(pool)
    handle = await s.start(env.client, task_queue, s.application(number))
    await s.submitted(handle)
    status = await s.approve(handle)
    assert status.fees is not None
    paid = await s.pay(handle, status.fees.first_prepayment_fen)
    assert paid.status.next_deadline is not None
    await sleep_until(env, paid.status.next_deadline - timedelta(minutes=5))
    await s.verify(handle)
    await s.active(env, handle)


# ------------------------------------------------------------------ activate


async def test_activation_waits_for_the_agreed_time(env, pool, task_queue) -> None:
    number = await s.fresh_number(pool)
    activation_at = (await now(env)) + timedelta(days=3)
    handle = await s.start(
        env.client, task_queue, s.application(number, activation_at=activation_at.isoformat())
    )
    await s.run_to_active(handle)
    status = await s.query_status(handle)
    assert (status.stage, status.status, status.waiting_for) == (
        Stage.ACTIVATE,
        Status.AWAITING_ACTIVATION,
        WaitingFor.ACTIVATION_TIME,
    )
    assert status.next_deadline == activation_at

    await env.sleep(timedelta(days=2))
    assert (await s.query_status(handle)).status is Status.AWAITING_ACTIVATION
    assert await s.provision_calls(pool, s.app_id(handle)) == {}, "the carrier is not called early"

    await sleep_until(env, activation_at)
    result = await s.active(env, handle)
    assert result.status.activated_at is not None and result.status.activated_at >= activation_at
    assert (await event_types(pool, handle))[-2:] == [
        EventType.PROVISIONING_STARTED,
        EventType.NUMBER_ACTIVATED,
    ]
    await consistent(pool, handle)


async def test_carrier_failures_are_retried_until_it_succeeds(env, pool, task_queue) -> None:
    number = await s.fresh_number(pool)
    await s.inject_fault(pool, number, fail_times=3)
    handle = await s.start(env.client, task_queue, s.application(number))
    await s.run_to_active(handle)
    await s.active(env, handle)
    assert await s.provision_calls(pool, s.app_id(handle)) == {"unavailable": 3, "provisioned": 1}
    order = await s.carrier_order(pool, s.app_id(handle))
    assert order is not None and order.provisions == 1
    assert (await event_types(pool, handle)).count(EventType.NUMBER_ACTIVATED) == 1


async def test_a_carrier_refusal_fails_provisioning_and_releases(env, pool, task_queue) -> None:
    number = await s.fresh_number(pool)
    await s.inject_fault(pool, number, reject=True)
    handle = await s.start(env.client, task_queue, s.application(number))
    await s.run_to_active(handle)
    result = await closed_with(handle, Status.PROVISIONING_FAILED)
    assert result.status.activated_at is None
    await assert_released(pool, number)
    assert await s.provision_calls(pool, s.app_id(handle)) == {"rejected": 1}, "a refusal is not retried"
    order = await s.carrier_order(pool, s.app_id(handle))
    assert order is not None and order.status == "cancelled"
    events = await s.stream(pool, s.app_id(handle))
    assert events[-1].reason is not None and "refused" in events[-1].reason


async def test_a_carrier_down_past_every_retry_fails_provisioning(env, pool, task_queue) -> None:
    number = await s.fresh_number(pool)
    await s.inject_fault(pool, number, fail_times=100)
    handle = await s.start(
        env.client, task_queue, s.application(number), timings=s.fast_timings(carrier_retry_max_attempts=3)
    )
    await s.run_to_active(handle)
    await closed_with(handle, Status.PROVISIONING_FAILED)
    assert await s.provision_calls(pool, s.app_id(handle)) == {"unavailable": 3}
    await assert_released(pool, number)


# ------------------------------------------------------------------ withdrawal


async def _to_in_review(handle: s.Handle) -> None:
    await s.submitted(handle)


async def _to_changes_requested(handle: s.Handle) -> None:
    await s.submitted(handle)
    await s.request_changes(handle)


async def _to_allocate(handle: s.Handle) -> None:
    await s.submitted(handle)
    await s.approve(handle)


async def _to_verify(handle: s.Handle) -> None:
    await s.submitted(handle)
    status = await s.approve(handle)
    assert status.fees is not None
    await s.pay(handle, status.fees.first_prepayment_fen)


async def _to_activate(handle: s.Handle) -> None:
    await s.run_to_active(handle)


STAGES = {
    Status.IN_REVIEW: _to_in_review,
    Status.CHANGES_REQUESTED: _to_changes_requested,
    Status.AWAITING_PREPAYMENT: _to_allocate,
    Status.AWAITING_VERIFICATION: _to_verify,
    Status.AWAITING_ACTIVATION: _to_activate,
    Status.PROVISIONING: _to_activate,
}


@pytest.mark.parametrize("at", list(STAGES), ids=lambda st: st.value)
async def test_withdrawal_at_each_stage_releases_the_number(env, pool, task_queue, at: Status) -> None:
    number = await s.fresh_number(pool)
    overrides: dict[str, Any] = {}
    timings = s.fast_timings()
    if at is Status.AWAITING_ACTIVATION:
        overrides["activation_at"] = ((await now(env)) + timedelta(days=5)).isoformat()
    if at is Status.PROVISIONING:
        # The carrier keeps failing, so the registration stays in provisioning.
        await s.inject_fault(pool, number, fail_times=10_000)
        timings = s.fast_timings(carrier_retry_max_attempts=0)
    handle = await s.start(env.client, task_queue, s.application(number, **overrides), timings=timings)
    await STAGES[at](handle)
    if at is Status.PROVISIONING:
        await s.carrier_failed(pool, handle)
    status = await s.query_status(handle)
    assert status.status is at

    status = await s.withdraw(handle)
    assert (status.stage, status.status) == (Stage.CLOSED, Status.WITHDRAWN)
    await closed_with(handle, Status.WITHDRAWN)
    await assert_released(pool, number)
    events = await s.stream(pool, s.app_id(handle))
    assert events[-1].event_type is EventType.APPLICATION_WITHDRAWN
    assert (events[-1].actor, events[-1].reason) == ("key_acme", "changed our mind")
    assert events[-1].payload["from_status"] == at.value
    await consistent(pool, handle)
    if at is Status.PROVISIONING:
        order = await s.carrier_order(pool, s.app_id(handle))
        assert order is not None and order.status == "cancelled", "nothing may ring through after withdrawal"


async def test_no_withdrawal_after_activation_or_closing(env, pool, task_queue) -> None:
    number = await s.fresh_number(pool)
    handle = await s.start(env.client, task_queue, s.application(number))
    await s.run_to_active(handle)
    await s.active(env, handle)
    # The service workflow now runs under the id and refuses the registration's
    # Updates in words of its own; its Query answers with the service's status.
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await s.withdraw(handle)
    error = update_error(refused.value)
    assert error.type == ERR_WRONG_STAGE and "in service" in error.message
    assert (await s.query_status(handle)).stage is Stage.ACTIVE
    assert (await s.number_row(pool, number))["status"] == "active"


async def test_cancelling_the_workflow_releases_the_number(env, pool, task_queue) -> None:
    number = await s.fresh_number(pool)
    handle = await s.start(env.client, task_queue, s.application(number))
    await s.submitted(handle)
    await s.approve(handle)
    withdrawn = await cancelled(pool, handle, number)
    assert withdrawn.actor == "system"


async def cancelled(pool: asyncpg.Pool, handle: s.Handle, number: str) -> Event:
    """Cancels the workflow; expects it to end cancelled with the number released
    and the registration withdrawn. Returns the withdrawal event."""
    await handle.cancel()
    with pytest.raises(WorkflowFailureError) as caught:
        await s.result(handle)
    assert isinstance(caught.value.cause, CancelledError)
    await assert_released(pool, number)
    events = await s.stream(pool, s.app_id(handle))
    assert events[-1].event_type is EventType.APPLICATION_WITHDRAWN
    return events[-1]


async def _provisioning_with_the_carrier_slow(
    env: WorkflowEnvironment, pool: asyncpg.Pool, task_queue: str
) -> tuple[str, s.Handle]:
    """A registration whose carrier call is in flight: the fake carrier takes
    half a minute to answer (a delay fault), far longer than the workflow task.

    The call runs in the workflow task that took the verification, so what
    comes in meanwhile (a cancel, a withdrawal) is delivered once that task
    heartbeats, after 80% of the task timeout, shortened here. A cancel cuts
    the delay short, so a passing test does not wait it out."""
    number = await s.fresh_number(pool)
    await s.inject_fault(pool, number, delay_ms=30_000)
    handle = await s.start(
        env.client,
        task_queue,
        s.application(number),
        timings=s.fast_timings(carrier_call_timeout=timedelta(seconds=60)),
        task_timeout=timedelta(seconds=3),
    )
    status = await s.submitted(handle)
    status = await s.approve(handle)
    assert status.fees is not None
    await s.pay(handle, status.fees.first_prepayment_fen)
    # Answered at the task's heartbeat, the call still on its way.
    status = await s.verify(handle)
    assert status.status is Status.PROVISIONING
    assert await s.provision_calls(pool, s.app_id(handle)) == {}
    return number, handle


async def test_cancelling_the_workflow_during_the_carrier_call_withdraws(env, pool, task_queue) -> None:
    """The cancelled call must not pass for a carrier failure: the registration
    is withdrawn as for a cancel at any other step, and the workflow ends cancelled."""
    number, handle = await _provisioning_with_the_carrier_slow(env, pool, task_queue)
    withdrawn = await cancelled(pool, handle, number)
    assert withdrawn.reason == "registration workflow cancelled"
    order = await s.carrier_order(pool, s.app_id(handle))
    assert order is not None and order.status == "cancelled"


async def test_withdrawal_during_the_carrier_call_stops_it_and_cancels_at_the_carrier(
    env, pool, task_queue
) -> None:
    number, handle = await _provisioning_with_the_carrier_slow(env, pool, task_queue)
    status = await s.withdraw(handle)
    assert status.status is Status.WITHDRAWN
    await closed_with(handle, Status.WITHDRAWN)
    await assert_released(pool, number)
    # The call was stopped: it never provisioned, and the order is a cancelled
    # tombstone that refuses a late one.
    assert await s.provision_calls(pool, s.app_id(handle)) == {}
    order = await s.carrier_order(pool, s.app_id(handle))
    assert order is not None and (order.status, order.provisions) == ("cancelled", 0)


async def test_a_service_update_while_the_number_is_being_activated_says_retry_in_a_moment(
    env, pool, task_queue
) -> None:
    """The read model can say active before this run has applied the activation
    (a worker that died after recording it): a service Update then is refused
    as "retry in a moment" (503 at the API), not as the wrong stage (409)."""
    number, handle = await _provisioning_with_the_carrier_slow(env, pool, task_queue)
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(
            UPDATE_SERVICE_PAY,
            PaymentRequest(payment_id="top-up", amount_fen=100, actor=s.APPLICANT),
            result_type=ServicePaymentResult,
        )
    cause = refused.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == ERR_ACTIVATING, cause
    await s.withdraw(handle)
    await closed_with(handle, Status.WITHDRAWN)
    await assert_released(pool, number)


async def test_carrier_backoff_doubles_up_to_its_cap_for_any_number_of_attempts() -> None:
    timings = RegistrationTimings(
        carrier_retry_initial=timedelta(seconds=1), carrier_retry_max_interval=timedelta(minutes=5)
    )
    waits = [carrier_backoff(timings, attempt) for attempt in (1, 2, 3, 9, 10, 100, 100_000)]
    assert waits == [timedelta(seconds=s) for s in (1, 2, 4, 256, 300, 300, 300)]


# ------------------------------------------------------------------ personal data


async def test_logs_hold_no_plaintext_id_number(env, pool, task_queue, caplog) -> None:
    number = await s.fresh_number(pool)
    await s.inject_fault(pool, number, fail_times=1)
    with caplog.at_level(logging.DEBUG):
        handle = await s.start(env.client, task_queue, s.application(number))
        await s.run_to_active(handle)
        await s.active(env, handle)
    assert "registration event recorded" in caplog.text
    assert LEGAL_REP_ID not in caplog.text and "张伟" not in caplog.text


async def test_history_holds_no_plaintext_id_number(env, pool, task_queue) -> None:
    number = await s.fresh_number(pool)
    handle = await s.start(env.client, task_queue, s.application(number))
    await s.submitted(handle)
    await s.request_changes(handle)
    await s.resubmit(handle, s.corrected(number))
    await s.withdraw(handle)
    await s.result(handle)
    history = await handle.fetch_history()
    raw = history.to_json()
    assert LEGAL_REP_ID not in raw
    assert "张伟" not in raw and "\\u5f20\\u4f1f" not in raw, "names too: every payload is encrypted"
    for event in history.events:
        assert LEGAL_REP_ID.encode() not in event.SerializeToString()
    # ... and the event log and read model keep it masked.
    events = await s.stream(pool, s.app_id(handle))
    assert LEGAL_REP_ID not in str([e.payload for e in events])
    row = await s.read_model(pool, s.app_id(handle))
    assert row is not None and LEGAL_REP_ID not in str(dict(row))

"""At ACTIVE the registration carries on as the number's service under the same
workflow id, in its own run, until the service first continues as new into
ServiceWorkflow: billing, payments and the event stream continue where it stopped."""

from __future__ import annotations

from datetime import timedelta

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from domain.service_rules import ChangeKind, ServiceState
from tests.workflows import support as s
from workflows.contracts import ERR_WRONG_STAGE, WORKFLOW_NAME, PaymentRequest, Stage, Status
from workflows.service_contracts import (
    DEFAULT_CYCLES_PER_RUN,
    QUERY_SERVICE_STATUS,
    SERVICE_WORKFLOW_NAME,
    UPDATE_SERVICE_PAY,
    ServicePaymentResult,
    ServiceStatus,
)


async def service_status(handle: s.Handle) -> ServiceStatus:
    status: ServiceStatus = await handle.query(QUERY_SERVICE_STATUS, result_type=ServiceStatus)
    return status


async def test_an_active_registration_carries_on_as_the_service_in_the_same_run(
    env, pool, task_queue
) -> None:
    number = await s.fresh_number(pool)
    handle = await s.start(env.client, task_queue, s.application(number))
    await s.run_to_active(handle)

    result = await s.active(env, handle)
    live = await service_status(handle)
    assert result.status.fees is not None and result.status.activated_at is not None
    prepaid = result.status.fees.first_prepayment_fen
    # The service's first deadline is the one activation named: the first bill,
    # a billing cycle on, so dashboards see it from the start; the real-name
    # re-confirmation is due a year on.
    bill = result.status.activated_at + timedelta(days=30)
    assert (live.stage, live.status, live.service_state) == (Stage.ACTIVE, Status.ACTIVE, ServiceState.ACTIVE)
    assert (live.number, live.balance_fen) == (number, prepaid)
    assert (live.next_deadline, live.next_deadline_kind, result.status.next_deadline) == (
        bill,
        "billing",
        bill,
    )
    assert live.next_bill_at == bill
    assert live.realname_due_at == result.status.activated_at + timedelta(days=365)

    # Still the registration's run, not a new one.
    description = await handle.describe()
    assert (description.run_id, description.workflow_type) == (handle.result_run_id, WORKFLOW_NAME)

    paid: ServicePaymentResult = await handle.execute_update(
        UPDATE_SERVICE_PAY,
        PaymentRequest(payment_id="top-up-1", amount_fen=10_000, actor=s.APPLICANT),
        result_type=ServicePaymentResult,
    )
    assert (paid.accepted, paid.balance_fen) == (True, prepaid + 10_000)
    # The registration's own steps are over.
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await s.withdraw(handle)
    assert isinstance(refused.value.cause, ApplicationError) and refused.value.cause.type == ERR_WRONG_STAGE

    await env.sleep(timedelta(days=31))
    after = await service_status(handle)
    spend = result.status.fees.min_monthly_spend_fen
    assert (after.cycle_number, after.balance_fen) == (2, prepaid + 10_000 - spend)
    rows = await pool.fetch(
        "SELECT version, event_type FROM domain_event WHERE stream_id = $1 ORDER BY version", s.app_id(handle)
    )
    assert [r["version"] for r in rows] == list(range(1, len(rows) + 1)), "one stream, no gaps"
    assert [r["event_type"] for r in rows[-2:]] == [
        ChangeKind.PAYMENT_RECEIVED.value,
        ChangeKind.BILLED.value,
    ]

    # After a run's worth of billing cycles the service continues as new, as
    # ServiceWorkflow, carrying its record.
    await env.sleep(timedelta(days=30 * (DEFAULT_CYCLES_PER_RUN - 1)))
    latest = await env.client.get_workflow_handle(handle.id).fetch_history()
    started = latest.events[0].workflow_execution_started_event_attributes
    assert started.workflow_type.name == SERVICE_WORKFLOW_NAME
    carried = await service_status(handle)
    assert (carried.number, carried.cycle_number) == (number, DEFAULT_CYCLES_PER_RUN + 1)

"""The registration workflow on a real dev server: visibility, and workers killed mid-step.

A worker is killed with SIGKILL at the worst moment: right after a step did its
work (a committed transaction, a number provisioned at the carrier) and before
Temporal recorded it. A new worker must finish the registration with nothing
lost and nothing done twice.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import asyncpg
import pytest
from temporalio.client import Client, WithStartWorkflowOperation, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.converter import default as default_converter
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from activities.repositories import fake_carrier
from api.ids import new_id
from app.settings import Settings
from domain.timeline import EventType
from tests.workflows import support as s
from workflows.contracts import (
    ERR_WRONG_STAGE,
    QUERY_STATUS,
    UPDATE_DECIDE,
    WORKFLOW_NAME,
    Decision,
    DecisionRequest,
    RegistrationInput,
    RegistrationStatus,
    Stage,
    Status,
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
from workflows.service_contracts import ServiceStatus

# Short workflow task timeout: the server re-dispatches a task that the killed
# worker held after this long instead of the default ten seconds.
TASK_TIMEOUT = timedelta(seconds=2)

T = TypeVar("T")


@pytest.fixture
async def client(temporal_env: WorkflowEnvironment) -> Client:
    return temporal_env.client


class WorkerProcess:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    async def wait_for(self, text: str, timeout: float = 60) -> None:
        assert self.proc.stdout is not None
        async with asyncio.timeout(timeout):
            while True:
                line = (await self.proc.stdout.readline()).decode()
                if not line:
                    raise RuntimeError("worker process exited")
                if text in line:
                    return

    async def kill(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        await self.proc.wait()


@pytest.fixture
async def spawn_worker(
    client: Client, pg_url: str, settings: Settings, task_queue: str
) -> AsyncIterator[object]:
    started: list[WorkerProcess] = []

    async def spawn(hang_after: str) -> WorkerProcess:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.workflows.worker_process",
            "--address",
            client.service_client.config.target_host,
            "--task-queue",
            task_queue,
            "--database-url",
            pg_url,
            "--keys",
            settings.payload_encryption_keys,
            "--hang-after",
            hang_after,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        worker = WorkerProcess(proc)
        started.append(worker)
        await worker.wait_for("READY")
        return worker

    yield spawn
    for worker in started:
        if worker.proc.returncode is None:
            await worker.kill()


async def event_counts(pool: asyncpg.Pool, handle: s.Handle) -> dict[EventType, int]:
    counts: dict[EventType, int] = {}
    for event in await s.stream(pool, s.app_id(handle)):
        counts[event.event_type] = counts.get(event.event_type, 0) + 1
    return counts


async def test_search_attributes_are_current_for_the_temporal_ui(client, pool, settings, task_queue) -> None:
    number = await s.fresh_number(pool)
    async with s.registration_worker(client, task_queue, pool, settings):
        # Review target of 0 working days: overdue as soon as it is submitted.
        handle = await s.start(
            client, task_queue, s.application(number), timings=s.fast_timings(review_target_working_days=0)
        )
        status = await s.submitted(handle)
        for _ in range(50):
            attrs = (await handle.describe()).typed_search_attributes
            if attrs.get(OVERDUE):
                break
            await asyncio.sleep(0.1)
        assert attrs.get(STAGE) == "audit"
        assert attrs.get(CARRIER) == s.CARRIER
        assert attrs.get(ORGANISATION) == "org_acme"
        assert attrs.get(SERVICE_NUMBER) == number
        assert attrs.get(OVERDUE) is True
        assert attrs.get(NEXT_DEADLINE) == status.next_deadline

        status = await s.approve(handle)
        attrs = (await handle.describe()).typed_search_attributes
        assert (attrs.get(STAGE), attrs.get(OVERDUE)) == ("allocate", False)
        assert attrs.get(NEXT_DEADLINE) == status.next_deadline

        found = [
            wf.id
            async for wf in client.list_workflows(
                "RegistrationStage = 'allocate' AND OrganisationId = 'org_acme' "
                f"AND ServiceNumber = '{number}'"
            )
        ]
        for _ in range(50):
            if found:
                break
            await asyncio.sleep(0.1)
            found = [wf.id async for wf in client.list_workflows(f"ServiceNumber = '{number}'")]
        assert found == [handle.id]

        await s.withdraw(handle)
        await s.result(handle)
        attrs = (await handle.describe()).typed_search_attributes
        assert (attrs.get(STAGE), attrs.get(NEXT_DEADLINE)) == ("closed", None)


async def test_a_decision_that_comes_with_the_start_costs_one_upsert(
    client, pool, settings, task_queue
) -> None:
    """Visibility sees only the end of a workflow task. A decision sent with the
    start is applied in the apply step's task, so the Temporal UI goes straight
    to allocate, with one upsert (one visibility write), not two."""
    number = await s.fresh_number(pool)
    app_id = new_id("app")
    start: WithStartWorkflowOperation[Any, Any] = WithStartWorkflowOperation(
        WORKFLOW_NAME,
        RegistrationInput(
            application_id=app_id,
            form=s.application(number),
            submitted_by=s.APPLICANT,
            correlation_id=f"corr-{app_id}",
            timings=s.fast_timings(),
        ),
        id=registration_workflow_id(app_id),
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
    )
    s.track(client, registration_workflow_id(app_id))
    async with s.registration_worker(client, task_queue, pool, settings):
        status: RegistrationStatus = await client.execute_update_with_start_workflow(
            UPDATE_DECIDE,
            DecisionRequest(decision=Decision.APPROVE, operator=s.OPERATOR),
            start_workflow_operation=start,
            result_type=RegistrationStatus,
        )
        assert (status.stage, status.status) == (Stage.ALLOCATE, Status.AWAITING_PREPAYMENT)
        handle = await start.workflow_handle()
        history = await handle.fetch_history()
        upserts = [
            e.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields
            for e in history.events
            if e.HasField("upsert_workflow_search_attributes_event_attributes")
        ]
        assert [default_converter().payload_converter.from_payload(u[STAGE.name], str) for u in upserts] == [
            "allocate"
        ]
        attrs = (await handle.describe()).typed_search_attributes
        assert (attrs.get(STAGE), attrs.get(NEXT_DEADLINE)) == ("allocate", status.next_deadline)


async def test_search_attributes_show_the_activate_stage_while_the_carrier_is_down(
    client, pool, settings, task_queue
) -> None:
    """The carrier call normally runs in the same workflow task as the verification
    and ACTIVE, so the UI skips from verify to active; while the carrier is down
    the registration must show that it is activating, not still verifying."""
    number = await s.fresh_number(pool)
    await s.inject_fault(pool, number, fail_times=10_000)
    async with s.registration_worker(client, task_queue, pool, settings):
        handle = await s.start(
            client, task_queue, s.application(number), timings=s.fast_timings(carrier_retry_max_attempts=0)
        )
        await s.run_to_active(handle)
        await s.carrier_failed(pool, handle)
        attrs = (await handle.describe()).typed_search_attributes
        assert (attrs.get(STAGE), attrs.get(NEXT_DEADLINE)) == ("activate", None)

        async with pool.acquire() as conn:
            await fake_carrier.clear_fault(conn, number)
        await s.reached_active(handle)
        attrs = (await handle.describe()).typed_search_attributes
        assert attrs.get(STAGE) == "active"
        assert attrs.get(LIFECYCLE) == "in_service"
        # The status names the nearest deadline, the first bill; the search
        # attribute the next one that matters beyond bills, the real-name check.
        status = await handle.query(QUERY_STATUS, result_type=ServiceStatus)
        assert status.next_deadline_kind == "billing"
        assert status.next_deadline == status.next_bill_at
        assert attrs.get(NEXT_DEADLINE) == status.realname_due_at
        assert attrs.get(SERVICE_NUMBER) == number


async def test_worker_killed_after_a_deadline_step_committed(
    client, pool, settings, task_queue, spawn_worker
) -> None:
    number = await s.fresh_number(pool)
    worker = await spawn_worker("PrepaymentExpired")
    handle = await s.start(
        client,
        task_queue,
        s.application(number),
        timings=s.fast_timings(prepayment_window=timedelta(seconds=1)),
        task_timeout=TASK_TIMEOUT,
    )
    await s.submitted(handle)
    await s.approve(handle)
    await worker.wait_for("HANGING after PrepaymentExpired")
    await worker.kill()
    assert (await event_counts(pool, handle))[EventType.PREPAYMENT_EXPIRED] == 1, "committed before the kill"

    async with s.registration_worker(client, task_queue, pool, settings):
        result = await s.result(handle)

    assert result.status.status is Status.PREPAYMENT_EXPIRED
    assert await event_counts(pool, handle) == {
        EventType.APPLICATION_SUBMITTED: 1,
        EventType.APPLICATION_APPROVED: 1,
        EventType.PREPAYMENT_EXPIRED: 1,
    }
    row = await s.number_row(pool, number)
    assert (row["status"], row["registration_id"]) == ("available", None)
    model = await s.read_model(pool, s.app_id(handle))
    assert model is not None and (model["status"], model["last_event_version"]) == ("prepayment_expired", 3)


async def test_worker_killed_after_an_update_step_committed(
    client, pool, settings, task_queue, spawn_worker
) -> None:
    number = await s.fresh_number(pool)
    worker = await spawn_worker("ApplicationApproved")
    handle = await s.start(client, task_queue, s.application(number), task_timeout=TASK_TIMEOUT)
    await s.submitted(handle)
    decision = asyncio.create_task(s.approve(handle))
    await worker.wait_for("HANGING after ApplicationApproved")
    await worker.kill()

    async with s.registration_worker(client, task_queue, pool, settings):
        # The operator's call is answered by the new worker, from the stored step.
        status = await asyncio.wait_for(decision, timeout=60)
        assert (status.stage, status.status) == (Stage.ALLOCATE, Status.AWAITING_PREPAYMENT)
        assert status.fees is not None
        await s.pay(handle, status.fees.first_prepayment_fen)
        await s.verify(handle)
        result = await s.reached_active(handle)

    assert result.outcome == "active"
    counts = await event_counts(pool, handle)
    assert counts[EventType.APPLICATION_APPROVED] == 1
    assert sum(counts.values()) == 5


async def test_worker_killed_after_the_carrier_provisioned(
    client, pool, settings, task_queue, spawn_worker
) -> None:
    number = await s.fresh_number(pool)
    worker = await spawn_worker("provision")
    handle = await s.start(
        client,
        task_queue,
        s.application(number),
        # The carrier call's timeout is how soon the server retries the call the dead worker held.
        timings=s.fast_timings(carrier_call_timeout=timedelta(seconds=2)),
        task_timeout=TASK_TIMEOUT,
    )
    await s.run_to_active(handle)
    await worker.wait_for("HANGING after provision")
    await worker.kill()
    order = await s.carrier_order(pool, s.app_id(handle))
    assert order is not None and order.status == "provisioned", "the carrier did the work before the kill"

    async with s.registration_worker(client, task_queue, pool, settings):
        result = await s.reached_active(handle)

    assert result.outcome == "active"
    assert await s.provision_calls(pool, s.app_id(handle)) == {"provisioned": 1, "already_provisioned": 1}
    order = await s.carrier_order(pool, s.app_id(handle))
    assert order is not None and order.provisions == 1, "provisioned once at the carrier"
    counts = await event_counts(pool, handle)
    assert counts[EventType.NUMBER_ACTIVATED] == 1 and sum(counts.values()) == 5
    assert (await s.number_row(pool, number))["status"] == "active"


# --------------------------------------------------------------------------
# An Update racing a deadline across a worker crash (issue 12, item 1)
#
# A worker commits a step and dies before Temporal records it. The task is
# retried with the deadline that step was for AND an Update that arrived
# meanwhile; the SDK runs the Update first, so the replay drafts a different
# step at the version the dead worker's step took. That stored step is a fact:
# it is applied, and the Update is decided again against the state it left,
# answered with what it really did, never with the other step's success.
# --------------------------------------------------------------------------


async def sent_while_no_worker_runs(call: Awaitable[T]) -> asyncio.Task[T]:
    """``call`` in flight before the next worker starts, so that the retried task
    brings the server both the Update and the deadline the dead worker met."""
    task = asyncio.ensure_future(call)
    await asyncio.sleep(0.5)
    assert not task.done()
    return task


def refused_after(raised: pytest.ExceptionInfo[WorkflowUpdateFailedError], first: EventType) -> str:
    cause = raised.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == ERR_WRONG_STAGE, cause
    assert f"{first.value} was recorded first" in cause.message, cause.message
    return cause.message


async def test_a_payment_racing_the_prepayment_expiry_is_refused_never_lost(
    client, pool, settings, task_queue, spawn_worker
) -> None:
    number = await s.fresh_number(pool)
    worker = await spawn_worker("PrepaymentExpired")
    handle = await s.start(
        client,
        task_queue,
        s.application(number),
        timings=s.fast_timings(prepayment_window=timedelta(seconds=1)),
        task_timeout=TASK_TIMEOUT,
    )
    await s.submitted(handle)
    approved = await s.approve(handle)
    assert approved.fees is not None
    await worker.wait_for("HANGING after PrepaymentExpired")
    await worker.kill()
    payment = await sent_while_no_worker_runs(s.pay(handle, approved.fees.first_prepayment_fen))

    async with s.registration_worker(client, task_queue, pool, settings):
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await asyncio.wait_for(payment, timeout=60)
        result = await s.result(handle)

    assert "prepayment" in refused_after(refused, EventType.PREPAYMENT_EXPIRED)
    assert result.status.status is Status.PREPAYMENT_EXPIRED and result.status.paid_fen == 0
    assert await event_counts(pool, handle) == {
        EventType.APPLICATION_SUBMITTED: 1,
        EventType.APPLICATION_APPROVED: 1,
        EventType.PREPAYMENT_EXPIRED: 1,
    }
    assert (await s.number_row(pool, number))["status"] == "available"


async def test_a_decision_racing_the_review_deadline_is_applied_after_it(
    client, pool, settings, task_queue, spawn_worker
) -> None:
    number = await s.fresh_number(pool)
    worker = await spawn_worker("ReviewOverdue")
    # Review target of 0 working days: overdue in the apply step's own task.
    handle = await s.start(
        client,
        task_queue,
        s.application(number),
        timings=s.fast_timings(review_target_working_days=0),
        task_timeout=TASK_TIMEOUT,
    )
    await worker.wait_for("HANGING after ReviewOverdue")
    await worker.kill()
    decision = await sent_while_no_worker_runs(s.approve(handle))

    async with s.registration_worker(client, task_queue, pool, settings):
        status = await asyncio.wait_for(decision, timeout=60)

    # The overdue mark was a fact; the approval still fitted and was applied after it.
    assert (status.stage, status.status, status.last_event_version) == (
        Stage.ALLOCATE,
        Status.AWAITING_PREPAYMENT,
        3,
    )
    assert [e.event_type for e in await s.stream(pool, s.app_id(handle))] == [
        EventType.APPLICATION_SUBMITTED,
        EventType.REVIEW_OVERDUE,
        EventType.APPLICATION_APPROVED,
    ]
    row = await s.number_row(pool, number)
    assert (row["status"], row["registration_id"]) == ("allocated", s.app_id(handle))


async def test_a_verification_racing_its_expiry_is_refused_never_lost(
    client, pool, settings, task_queue, spawn_worker
) -> None:
    number = await s.fresh_number(pool)
    worker = await spawn_worker("VerificationExpired")
    handle = await s.start(
        client,
        task_queue,
        s.application(number),
        timings=s.fast_timings(verification_window=timedelta(seconds=1)),
        task_timeout=TASK_TIMEOUT,
    )
    await s.submitted(handle)
    approved = await s.approve(handle)
    assert approved.fees is not None
    await s.pay(handle, approved.fees.first_prepayment_fen)
    await worker.wait_for("HANGING after VerificationExpired")
    await worker.kill()
    verification = await sent_while_no_worker_runs(s.verify(handle))

    async with s.registration_worker(client, task_queue, pool, settings):
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await asyncio.wait_for(verification, timeout=60)
        result = await s.result(handle)

    refused_after(refused, EventType.VERIFICATION_EXPIRED)
    assert result.status.status is Status.VERIFICATION_EXPIRED
    counts = await event_counts(pool, handle)
    assert EventType.VERIFICATION_PASSED not in counts and counts[EventType.VERIFICATION_EXPIRED] == 1
    assert (await s.number_row(pool, number))["status"] == "available"


async def test_a_withdrawal_racing_the_start_of_provisioning_withdraws(
    client, pool, settings, task_queue, spawn_worker
) -> None:
    number = await s.fresh_number(pool)
    worker = await spawn_worker("ProvisioningStarted")
    # Activation agreed for a moment after the verification: provisioning starts
    # when that timer fires, in a task of its own.
    activation_at = datetime.now(UTC) + timedelta(seconds=3)
    handle = await s.start(
        client, task_queue, s.application(number, activation_at=activation_at), task_timeout=TASK_TIMEOUT
    )
    await s.run_to_active(handle)
    await worker.wait_for("HANGING after ProvisioningStarted")
    await worker.kill()
    withdrawal = await sent_while_no_worker_runs(s.withdraw(handle))

    async with s.registration_worker(client, task_queue, pool, settings):
        withdrawn = await asyncio.wait_for(withdrawal, timeout=60)
        result = await s.result(handle)

    assert (withdrawn.stage, withdrawn.status) == (Stage.CLOSED, Status.WITHDRAWN)
    assert result.status.status is Status.WITHDRAWN
    assert [e.event_type for e in await s.stream(pool, s.app_id(handle))][-2:] == [
        EventType.PROVISIONING_STARTED,
        EventType.APPLICATION_WITHDRAWN,
    ]
    assert (await s.number_row(pool, number))["status"] == "available"
    order = await s.carrier_order(pool, s.app_id(handle))
    assert order is None or order.status == "cancelled", "nothing rings through at the carrier"

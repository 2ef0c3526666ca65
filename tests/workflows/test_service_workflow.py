"""The service workflow on the time-skipping server, over more than a year of
simulated time: billing, every arrears stage, reclaim and quarantine, real-name
deadlines, operator suspension, termination, and bounded history.

Each test starts ``ServiceWorkflow`` directly with a ``ServiceInput`` for a
number that the inventory has held, allocated and activated for it, and checks
the three places a change must reach: the workflow's Query, the inventory row,
the fake carrier, and the event log (with the read model).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import asyncpg
import pytest
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.repositories import events, fake_carrier, fake_carrier_service, inventory
from activities.service import ServiceActivities
from activities.service_carrier import FakeServiceCarrier
from app.embedded import temporal_test_server_path
from app.settings import Settings
from app.temporal import data_converter
from app.worker import workflow_runner
from domain import service_rules as rules
from domain.service_rules import ArrearsStage, ServiceDurations, ServiceState
from domain.timeline import RegistrationState
from domain.timeline import Stage as TimelineStage
from domain.timeline import Status as TimelineStatus
from tests.conftest import register_search_attributes
from tests.factories_inventory import add_fresh_numbers, in_minutes, new_registration_id
from tests.workflows import support as s
from workflows.contracts import (
    ERR_INVALID_REQUEST,
    ERR_WRONG_STAGE,
    Actor,
    ActorRole,
    Fees,
    PaymentRequest,
    RegistrationResult,
    RegistrationStatus,
    RegistrationTimings,
    Stage,
    Status,
    WaitingFor,
    registration_workflow_id,
    timings_from_settings,
)
from workflows.service import ServiceWorkflow
from workflows.service_contracts import (
    CarrierRetry,
    DetailsChangeReport,
    OperatorAction,
    RealnameConfirmation,
    ServiceInput,
    ServiceResult,
    ServiceStatus,
    TerminationRequest,
    service_input_from_registration,
)

CARRIER = "china_mobile"
PREFIX = "4001"
SPEND = 30_000  # CNY 300 a month
DAY = timedelta(days=1)
HOLDER = Actor(id="key_acme", role=ActorRole.APPLICANT)
OPERATOR = Actor(id="op_wang", role=ActorRole.OPERATOR)
# Short carrier backoff so that injected failures cost little real time.
FAST_RETRY = CarrierRetry(
    call_timeout=timedelta(seconds=10),
    initial_interval=timedelta(milliseconds=50),
    max_interval=timedelta(milliseconds=200),
)

_T = TypeVar("_T")


@pytest.fixture(scope="module")
async def service_time_env(settings: Settings) -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping server of this module's own.

    Skipping time fires every timer on the server, and a timer of a workflow
    whose worker is gone (another module's test that left it waiting) makes a
    task nobody takes, which stops time skipping for everyone. These tests skip
    over a year at a time, so they keep to a server of their own."""
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=data_converter(settings.encryption_keys),
        test_server_existing_path=str(temporal_test_server_path()),
    )
    try:
        await register_search_attributes(env.client)
        yield env
    finally:
        await env.shutdown()


@pytest.fixture
async def env(
    service_time_env: WorkflowEnvironment, pool: asyncpg.Pool, settings: Settings, task_queue: str
) -> AsyncIterator[WorkflowEnvironment]:
    acts = ServiceActivities(pool, settings, FakeServiceCarrier(pool))
    async with Worker(
        service_time_env.client,
        task_queue=task_queue,
        workflows=[ServiceWorkflow],
        activities=acts.callables(),
        workflow_runner=workflow_runner(),
    ):
        try:
            yield service_time_env
        finally:
            # For the same reason, nothing a test started may outlive its worker.
            await s.end_service_runs()


@dataclass
class Service:
    env: WorkflowEnvironment
    pool: asyncpg.Pool
    application_id: str
    number: str
    started_at: datetime
    first_run_id: str

    @property
    def handle(self) -> WorkflowHandle[ServiceWorkflow, ServiceResult]:
        # No run id: always the current run, whichever continue-as-new it is at.
        return self.env.client.get_workflow_handle_for(
            ServiceWorkflow.run, registration_workflow_id(self.application_id)
        )

    async def status(self) -> ServiceStatus:
        return await self.handle.query(ServiceWorkflow.status)

    async def sleep_until(self, days: float) -> None:
        """Skip to ``days`` after activation and let the workflow settle there."""
        now = await self.env.get_current_time()
        target = self.started_at + timedelta(days=days)
        if target > now:
            # Bounded, so that a stuck server fails the test instead of CI.
            await asyncio.wait_for(self.env.sleep(target - now), 120)
        await settled(self)

    async def inventory(self) -> inventory.NumberRecord:
        async with self.pool.acquire() as conn:
            record = await inventory.get_number(conn, self.number)
        assert record is not None
        return record

    async def carrier_actions(self) -> list[str]:
        async with self.pool.acquire() as conn:
            return await fake_carrier_service.applied_actions(conn, self.number)

    async def carrier_state(self) -> str | None:
        async with self.pool.acquire() as conn:
            line = await fake_carrier_service.get_line(conn, self.number)
        return line.state if line else None

    async def event_types(self) -> list[str]:
        rows = await self.pool.fetch(
            "SELECT event_type FROM domain_event WHERE stream_id = $1 ORDER BY version", self.application_id
        )
        return [r["event_type"] for r in rows]

    async def events(self) -> list[Any]:
        return list(
            await self.pool.fetch(
                "SELECT * FROM domain_event WHERE stream_id = $1 ORDER BY version", self.application_id
            )
        )

    async def row(self) -> asyncpg.Record:
        row = await self.pool.fetchrow("SELECT * FROM registration WHERE id = $1", self.application_id)
        assert row is not None
        return row


async def settled(service: Service, timeout: float = 20) -> ServiceStatus:
    """Wait until every change the workflow decided has been carried out: its
    last change's event is in the log (activities finish in real time)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        status = await service.status()
        seq = int(
            await service.pool.fetchval(
                "SELECT coalesce(max((payload->>'seq')::int), 0) FROM domain_event WHERE stream_id = $1",
                service.application_id,
            )
        )
        if seq >= status.change_seq:
            return status
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"workflow did not settle: log at seq {seq}, status {status}")
        await asyncio.sleep(0.05)


async def start_service(
    env: WorkflowEnvironment,
    pool: asyncpg.Pool,
    task_queue: str,
    *,
    balance: int = 3 * SPEND,
    spend: int = SPEND,
    durations: ServiceDurations | None = None,
    history_limit: int | None = None,
) -> Service:
    """A number activated for a new registration, and its service workflow started."""
    durations = durations or ServiceDurations()
    app_id = new_registration_id()
    (number,) = await add_fresh_numbers(pool, 1, prefix=PREFIX)
    now = await env.get_current_time()
    async with pool.acquire() as conn, conn.transaction():
        assert await inventory.hold_number(conn, number, app_id, in_minutes(30)) is not None
        await inventory.allocate(conn, number, app_id)
        await inventory.activate(conn, number, app_id)
        await events.save_registration(
            conn,
            RegistrationState(
                application_id=app_id,
                organisation_id="org-acme",
                carrier=CARRIER,
                company_name="Acme",
                credit_code="91110000600037341L",
                stage=TimelineStage.ACTIVE,
                status=TimelineStatus.ACTIVE,
                number=number,
                min_monthly_spend_fen=spend,
                paid_fen=balance,
                created_at=now,
                updated_at=now,
            ),
            registration_workflow_id(app_id),
        )
    extra: dict[str, Any] = {} if history_limit is None else {"history_limit": history_limit}
    inp = ServiceInput(
        application_id=app_id,
        organisation_id="org-acme",
        carrier=CARRIER,
        number=number,
        correlation_id=f"corr-{app_id}",
        durations=durations,
        retry=FAST_RETRY,
        record=rules.start(
            activated_at=now, balance_fen=balance, min_monthly_spend_fen=spend, durations=durations
        ),
        **extra,
    )
    handle = await env.client.start_workflow(
        ServiceWorkflow.run, inp, id=registration_workflow_id(app_id), task_queue=task_queue
    )
    s.track(env.client, registration_workflow_id(app_id))
    assert handle.first_execution_run_id is not None
    return Service(
        env=env,
        pool=pool,
        application_id=app_id,
        number=number,
        started_at=now,
        first_run_id=handle.first_execution_run_id,
    )


async def run_history_lengths(service: Service) -> list[int]:
    """The history length of every run so far, following continue-as-new.

    Also checks that no run cancelled a timer (the workflow reuses them)."""
    lengths: list[int] = []
    run_id: str | None = service.first_run_id
    while run_id:
        handle = service.env.client.get_workflow_handle(service.handle.id, run_id=run_id)
        history = await handle.fetch_history()
        lengths.append(len(history.events))
        assert not any(e.HasField("timer_canceled_event_attributes") for e in history.events)
        last = history.events[-1]
        attrs = last.workflow_execution_continued_as_new_event_attributes
        run_id = (
            attrs.new_execution_run_id
            if last.HasField("workflow_execution_continued_as_new_event_attributes")
            else None
        )
    return lengths


async def update(service: Service, update: Any, arg: Any) -> Any:
    return await asyncio.wait_for(service.handle.execute_update(update, arg), 60)


async def refused(call: Awaitable[_T]) -> ApplicationError:
    with pytest.raises(WorkflowUpdateFailedError) as err:
        await call
    cause = err.value.cause
    assert isinstance(cause, ApplicationError)
    return cause


def payment(amount: int, payment_id: str | None = None) -> PaymentRequest:
    return PaymentRequest(
        payment_id=payment_id or f"pay-{uuid.uuid4().hex[:8]}", amount_fen=amount, actor=HOLDER
    )


async def wait_for(check: Callable[[], Awaitable[bool]], timeout: float = 20) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


# ------------------------------------------------------------------ arrears


# Days after activation at which each arrears stage is reached, for a service
# started with no balance: the first bill (day 30) opens the arrears.
STAGES = {
    ArrearsStage.GRACE: (31, ServiceState.ACTIVE, "active"),
    ArrearsStage.RESTRICTED: (46, ServiceState.RESTRICTED, "restricted"),
    ArrearsStage.SUSPENDED: (76, ServiceState.SUSPENDED, "suspended"),
    ArrearsStage.FROZEN: (106, ServiceState.FROZEN, "frozen"),
}


@pytest.mark.parametrize("stage", list(STAGES))
async def test_arrears_reach_each_stage_then_a_payment_restores_service(
    env: WorkflowEnvironment, pool: asyncpg.Pool, task_queue: str, stage: ArrearsStage
) -> None:
    days, state, inventory_status = STAGES[stage]
    service = await start_service(env, pool, task_queue, balance=0)
    await service.sleep_until(days)

    status = await service.status()
    assert (status.arrears_stage, status.service_state) == (stage, state)
    assert status.overdue and status.waiting_for is WaitingFor.PREPAYMENT
    assert (await service.inventory()).status == inventory_status
    expected_actions = {
        ArrearsStage.GRACE: [],
        ArrearsStage.RESTRICTED: ["restrict"],
        ArrearsStage.SUSPENDED: ["restrict", "suspend"],
        ArrearsStage.FROZEN: ["restrict", "suspend", "freeze"],
    }[stage]
    assert await service.carrier_actions() == expected_actions
    # The debt: active and restricted time is billed (cycles end on days 30,
    # 60, 90), suspended and frozen time is not: the suspension on day 75 leaves
    # half of the third cycle billed, and nothing after it.
    charged = {
        ArrearsStage.GRACE: SPEND,
        ArrearsStage.RESTRICTED: SPEND,
        ArrearsStage.SUSPENDED: 2 * SPEND,
        ArrearsStage.FROZEN: 2 * SPEND + SPEND // 2,
    }[stage]
    assert (status.total_charged_fen, status.balance_fen) == (charged, -charged)

    # Half the debt: nothing changes. The rest: service is back.
    debt = -status.balance_fen
    result = await update(service, ServiceWorkflow.pay, payment(debt // 2))
    assert result.accepted and result.status.arrears_stage is stage
    result = await update(service, ServiceWorkflow.pay, payment(debt - debt // 2))
    assert result.balance_fen == 0
    assert result.status.service_state is ServiceState.ACTIVE
    assert result.status.arrears_stage is ArrearsStage.NONE
    assert not result.status.overdue
    await settled(service)
    assert (await service.inventory()).status == "active"
    if expected_actions:
        assert (await service.carrier_actions())[-1] == "resume"
        assert await service.carrier_state() == "active"
    types = await service.event_types()
    assert types[-3:] == ["ServicePaymentReceived", "ServicePaymentReceived", "ArrearsCleared"]
    row = await service.row()
    assert (row["service_state"], row["arrears_stage"], row["balance_fen"], row["overdue"]) == (
        "active",
        "none",
        0,
        False,
    )
    assert row["last_event_version"] == len(types)


async def test_arrears_run_to_reclaim_and_quarantine_then_the_number_goes_to_someone_else(
    env: WorkflowEnvironment, pool: asyncpg.Pool, task_queue: str
) -> None:
    service = await start_service(env, pool, task_queue, balance=0)
    other = new_registration_id()

    await service.sleep_until(30 + 254)  # frozen, the day before reclaim
    assert (await service.status()).service_state is ServiceState.FROZEN
    async with pool.acquire() as conn:
        assert await inventory.hold_number(conn, service.number, other, in_minutes(30)) is None

    await service.sleep_until(30 + 256)  # reclaimed
    status = await service.status()
    assert status.service_state is ServiceState.QUARANTINED
    assert status.closure is not None and status.closure.reason.value == "reclaimed"
    until = status.closure.quarantine_until
    assert until == service.started_at + (30 + 255 + 90) * DAY
    record = await service.inventory()
    assert (record.status, record.registration_id, record.quarantine_until) == ("quarantined", None, until)
    assert await service.carrier_state() == "deprovisioned"
    # A payment after reclaim no longer buys the number back.
    err = await refused(update(service, ServiceWorkflow.pay, payment(10**6)))
    assert err.type == ERR_WRONG_STAGE
    async with pool.acquire() as conn:
        assert await inventory.hold_number(conn, service.number, other, in_minutes(30)) is None

    # More than a year after activation the quarantine ends: released, and the
    # workflow is done.
    await service.sleep_until(30 + 255 + 91)
    result = await asyncio.wait_for(service.handle.result(), 60)
    assert result.outcome == "reclaimed"
    assert result.released_at == until
    assert (await service.inventory()).status == "available"
    async with pool.acquire() as conn:
        taken = await inventory.hold_number(conn, service.number, other, in_minutes(30))
    assert taken is not None and taken.registration_id == other

    types = await service.event_types()
    assert [t for t in types if t != "ServiceBilled"] == [
        "ArrearsGraceStarted",
        "ArrearsRestricted",
        "ArrearsSuspended",
        "ArrearsFrozen",
        "NumberReclaimed",
        "NumberReleased",
    ]
    assert await service.carrier_actions() == ["restrict", "suspend", "freeze", "deprovision"]
    # Billing stopped at suspension: the bills after it charged nothing.
    bills = [e for e in await service.events() if e["event_type"] == "ServiceBilled"]
    suspended_at = service.started_at + 75 * DAY
    assert all(b["payload"]["charge_fen"] == 0 for b in bills if b["occurred_at"] - 30 * DAY >= suspended_at)
    assert (await service.row())["service_state"] == "released"


# ---------------------------------------------------------------- real-name


async def test_realname_deadline_restricts_then_suspends_until_registered(
    env: WorkflowEnvironment, pool: asyncpg.Pool, task_queue: str
) -> None:
    service = await start_service(env, pool, task_queue, balance=10**8)
    status = await service.status()
    due = service.started_at + 365 * DAY
    assert status.realname_due_at == due

    await service.sleep_until(366)
    status = await service.status()
    assert (status.realname_stage.value, status.service_state) == ("overdue", ServiceState.ACTIVE)
    assert status.overdue and status.waiting_for is WaitingFor.VERIFICATION

    await service.sleep_until(365 + 16)
    assert (await service.status()).service_state is ServiceState.RESTRICTED
    assert (await service.inventory()).status == "restricted"

    await service.sleep_until(365 + 46)
    status = await service.status()
    assert (status.realname_stage.value, status.service_state) == ("suspended", ServiceState.SUSPENDED)
    assert (await service.inventory()).status == "suspended"
    assert await service.carrier_actions() == ["restrict", "suspend"]

    # Only an operator confirms, with a reason.
    err = await refused(
        update(
            service, ServiceWorkflow.confirm_realname, RealnameConfirmation(operator=HOLDER, reason="done")
        )
    )
    assert err.type == ERR_INVALID_REQUEST
    status = await update(
        service,
        ServiceWorkflow.confirm_realname,
        RealnameConfirmation(operator=OPERATOR, reason="holder and agent documents registered"),
    )
    assert status.service_state is ServiceState.ACTIVE
    assert status.realname_due_at is not None and status.realname_due_at > due + 365 * DAY
    await settled(service)
    assert (await service.inventory()).status == "active"
    assert await service.carrier_actions() == ["restrict", "suspend", "resume"]
    types = [t for t in await service.event_types() if t != "ServiceBilled"]
    assert types == ["RealnameOverdue", "RealnameRestricted", "RealnameSuspended", "RealnameConfirmed"]
    confirmed = (await service.events())[-1]
    assert (confirmed["actor"], confirmed["actor_role"], confirmed["reason"]) == (
        "op_wang",
        "operator",
        "holder and agent documents registered",
    )


# ----------------------------------------------------------------- operator


async def test_operator_suspends_and_resumes_with_a_reason(
    env: WorkflowEnvironment, pool: asyncpg.Pool, task_queue: str
) -> None:
    service = await start_service(env, pool, task_queue)

    err = await refused(
        update(service, ServiceWorkflow.operator_suspend, OperatorAction(operator=OPERATOR, reason="   "))
    )
    assert err.type == ERR_INVALID_REQUEST
    err = await refused(
        update(service, ServiceWorkflow.operator_suspend, OperatorAction(operator=HOLDER, reason="spam"))
    )
    assert err.type == ERR_INVALID_REQUEST
    err = await refused(
        update(service, ServiceWorkflow.operator_resume, OperatorAction(operator=OPERATOR, reason="why"))
    )
    assert err.type == ERR_WRONG_STAGE

    await service.sleep_until(10)
    status = await update(
        service,
        ServiceWorkflow.operator_suspend,
        OperatorAction(operator=OPERATOR, reason="improper marketing complaints", correlation_id="corr-op-1"),
    )
    assert status.service_state is ServiceState.SUSPENDED
    assert status.operator_hold is not None and status.operator_hold.reason == "improper marketing complaints"
    assert status.waiting_for is WaitingFor.OPERATOR_DECISION
    err = await refused(
        update(service, ServiceWorkflow.operator_suspend, OperatorAction(operator=OPERATOR, reason="again"))
    )
    assert err.type == ERR_WRONG_STAGE
    await settled(service)
    assert (await service.inventory()).status == "suspended"
    assert await service.carrier_state() == "suspended"

    # Suspended for the rest of the first cycle and all of the second: only
    # the first ten days are billed.
    await service.sleep_until(61)
    status = await service.status()
    assert status.total_charged_fen == SPEND // 3
    status = await update(
        service,
        ServiceWorkflow.operator_resume,
        OperatorAction(operator=OPERATOR, reason="complaint resolved"),
    )
    assert status.service_state is ServiceState.ACTIVE and status.operator_hold is None
    await settled(service)
    assert (await service.inventory()).status == "active"
    assert await service.carrier_actions() == ["suspend", "resume"]
    events_ = await service.events()
    suspended = next(e for e in events_ if e["event_type"] == "OperatorSuspended")
    assert (suspended["actor"], suspended["reason"], suspended["correlation_id"]) == (
        "op_wang",
        "improper marketing complaints",
        "corr-op-1",
    )
    assert suspended["payload"]["carrier_action"] == "suspend"
    assert [e["payload"]["charge_fen"] for e in events_ if e["event_type"] == "ServiceBilled"] == [
        SPEND // 3,
        0,
    ]


async def test_carrier_failures_are_retried_and_each_change_applied_once(
    env: WorkflowEnvironment, pool: asyncpg.Pool, task_queue: str
) -> None:
    service = await start_service(env, pool, task_queue)
    async with pool.acquire() as conn:
        await fake_carrier.inject_fault(conn, service.number, fail_times=3)
    status = await update(
        service, ServiceWorkflow.operator_suspend, OperatorAction(operator=OPERATOR, reason="fraud report")
    )
    assert status.service_state is ServiceState.SUSPENDED
    await settled(service)
    async with pool.acquire() as conn:
        calls = await fake_carrier_service.calls_by_outcome(conn, service.number)
    assert calls == {"unavailable": 3, "applied": 1}
    assert await service.event_types() == ["OperatorSuspended"]
    assert (await service.inventory()).status == "suspended"

    # A carrier that refuses for good: our books follow the decision, the event says so.
    async with pool.acquire() as conn:
        await fake_carrier.inject_fault(conn, service.number, reject=True)
    await update(
        service, ServiceWorkflow.operator_resume, OperatorAction(operator=OPERATOR, reason="cleared")
    )
    await settled(service)
    resumed = (await service.events())[-1]
    assert resumed["event_type"] == "OperatorResumed"
    assert "refused" in resumed["payload"]["carrier_refused"]
    assert (await service.inventory()).status == "active"


async def test_payments_are_counted_once(
    env: WorkflowEnvironment, pool: asyncpg.Pool, task_queue: str
) -> None:
    service = await start_service(env, pool, task_queue)
    first = await update(service, ServiceWorkflow.pay, payment(5_000, "pay-dup"))
    again = await update(service, ServiceWorkflow.pay, payment(5_000, "pay-dup"))
    assert first.accepted and not again.accepted
    assert again.balance_fen == first.balance_fen == 3 * SPEND + 5_000
    await settled(service)
    assert await service.event_types() == ["ServicePaymentReceived"]
    assert (await service.row())["balance_fen"] == 3 * SPEND + 5_000


# -------------------------------------------------------------- termination


async def test_termination_quarantines_the_number_then_releases_it(
    env: WorkflowEnvironment, pool: asyncpg.Pool, task_queue: str
) -> None:
    service = await start_service(env, pool, task_queue)
    await service.sleep_until(45)
    status = await update(
        service, ServiceWorkflow.terminate, TerminationRequest(actor=HOLDER, reason="closing the hotline")
    )
    assert status.service_state is ServiceState.QUARANTINED
    assert status.closure is not None and status.closure.reason.value == "terminated"
    # The first cycle and half of the second were billed.
    assert status.total_charged_fen == SPEND + SPEND // 2
    until = status.closure.quarantine_until
    await settled(service)
    record = await service.inventory()
    assert (record.status, record.quarantine_until) == ("quarantined", until)
    assert await service.carrier_state() == "deprovisioned"
    err = await refused(update(service, ServiceWorkflow.terminate, TerminationRequest(actor=HOLDER)))
    assert err.type == ERR_WRONG_STAGE

    await service.sleep_until(45 + 91)
    result = await asyncio.wait_for(service.handle.result(), 60)
    assert (result.outcome, result.released_at, result.balance_fen) == (
        "terminated",
        until,
        3 * SPEND - SPEND * 3 // 2,
    )
    assert (await service.inventory()).status == "available"
    assert await service.event_types() == ["ServiceBilled", "ServiceTerminated", "NumberReleased"]
    terminated = (await service.events())[1]
    assert (terminated["actor"], terminated["actor_role"], terminated["reason"]) == (
        "key_acme",
        "applicant",
        "closing the hotline",
    )


# ------------------------------------------------------------------ history


async def test_history_stays_bounded_over_two_years(
    env: WorkflowEnvironment, pool: asyncpg.Pool, task_queue: str
) -> None:
    service = await start_service(env, pool, task_queue, balance=30 * SPEND)
    await service.sleep_until(5)
    result = await update(
        service,
        ServiceWorkflow.report_details_change,
        # The due date is counted by the caller on the stored calendar (the API does).
        DetailsChangeReport(
            actor=HOLDER,
            changed_at=service.started_at,
            fields=["contact_address"],
            due_by=service.started_at + timedelta(days=14),
        ),
    )
    assert result.late is False
    for day in (300, 600):
        await service.sleep_until(day)
        await update(
            service,
            ServiceWorkflow.confirm_realname,
            RealnameConfirmation(operator=OPERATOR, reason="re-confirmed"),
        )

    await service.sleep_until(25 * 30 + 1)
    status = await service.status()
    assert status.cycle_number == 26
    assert status.total_charged_fen == 25 * SPEND
    assert status.balance_fen == 5 * SPEND
    assert status.service_state is ServiceState.ACTIVE
    assert status.next_bill_at == service.started_at + 26 * 30 * DAY
    types = await service.event_types()
    assert types.count("ServiceBilled") == 25
    assert len(types) == 28

    # A run per year of billing, each with a bounded history, however long the
    # service runs.
    lengths = await run_history_lengths(service)
    assert status.run == len(lengths) == 3
    assert max(lengths) < 120, lengths
    assert lengths[-1] < 30, lengths

    # A burst of Updates continues as new before the history grows past the limit.
    limited = await start_service(env, pool, task_queue, balance=10**8, history_limit=100)
    for i in range(30):
        await update(limited, ServiceWorkflow.pay, payment(1, f"burst-{i}"))
    status = await limited.status()
    assert status.total_paid_fen == 30
    assert status.run >= 2
    assert len((await limited.handle.fetch_history()).events) < 100


# ---------------------------------------------------------------- hand-off


def test_service_input_from_registration_at_active() -> None:
    activated = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
    status = RegistrationStatus(
        application_id="app-1",
        workflow_id=registration_workflow_id("app-1"),
        stage=Stage.ACTIVE,
        status=Status.ACTIVE,
        waiting_for=WaitingFor.NOTHING,
        carrier=CARRIER,
        organisation_id="org-acme",
        number="4001234567",
        fees=Fees(tier="standard", min_monthly_spend_fen=SPEND, first_prepayment_fen=90_000),
        paid_fen=100_000,
        activated_at=activated,
        last_event_version=9,
    )
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, environment="test", carrier_overrides={CARRIER: {"arrears_grace": "P20D"}}
    )
    timings = timings_from_settings(settings, CARRIER)
    result = RegistrationResult(application_id="app-1", outcome="active", status=status, correlation_id="c-1")
    inp = service_input_from_registration(result, timings)
    assert (inp.number, inp.carrier, inp.organisation_id, inp.correlation_id) == (
        "4001234567",
        CARRIER,
        "org-acme",
        "c-1",
    )
    assert inp.durations.arrears_grace == 20 * DAY  # the carrier's override travels with it
    assert inp.durations.quarantine == 90 * DAY
    assert inp.record.balance_fen == 100_000
    assert inp.record.min_monthly_spend_fen == SPEND
    assert inp.record.cycle_start == activated
    assert inp.record.realname_due_at == activated + 365 * DAY
    assert inp.retry.initial_interval == timings.carrier_retry_initial
    assert inp.registration == status
    # A round trip through JSON (as in workflow history) keeps everything.
    assert ServiceInput.model_validate_json(inp.model_dump_json()) == inp

    closed = result.model_copy(update={"outcome": "closed"})
    with pytest.raises(ValueError):
        service_input_from_registration(closed, timings)
    with pytest.raises(ValueError):
        service_input_from_registration(
            result.model_copy(update={"status": status.model_copy(update={"activated_at": None})}),
            RegistrationTimings(),
        )

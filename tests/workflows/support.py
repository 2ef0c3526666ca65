"""Shared drivers for registration workflow tests, the history generator and the bench."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

import asyncpg
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.carrier import CarrierGateway, FakeCarrier
from activities.registration import RegistrationActivities
from activities.repositories import events, fake_carrier
from activities.service import ServiceActivities
from activities.service_carrier import FakeServiceCarrier
from api.ids import new_id
from app.settings import Settings
from app.worker import workflow_runner
from domain.applicant import ApplicationForm
from domain.timeline import Event
from tests.domain.factories import valid_application_dict
from tests.factories_inventory import add_fresh_numbers
from workflows.contracts import (
    QUERY_STATUS,
    UPDATE_DECIDE,
    UPDATE_PAY,
    UPDATE_RESUBMIT,
    UPDATE_SUBMISSION,
    UPDATE_VERIFY,
    UPDATE_WITHDRAW,
    WORKFLOW_NAME,
    Actor,
    ActorRole,
    Decision,
    DecisionRequest,
    PaymentRequest,
    PaymentResult,
    RegistrationInput,
    RegistrationResult,
    RegistrationStatus,
    RegistrationTimings,
    RejectionReason,
    Resubmission,
    Stage,
    VerificationOutcome,
    VerificationRequest,
    WithdrawalRequest,
    registration_workflow_id,
)
from workflows.registration import RegistrationWorkflow
from workflows.service import ServiceWorkflow

T = TypeVar("T")

APPLICANT = Actor(id="key_acme", role=ActorRole.APPLICANT)
OPERATOR = Actor(id="op_wang", role=ActorRole.OPERATOR)
OTHER_OPERATOR = Actor(id="op_li", role=ActorRole.OPERATOR)

# Numbers from the China Mobile prefix 4001, the inventory tests' own range.
CARRIER = "china_mobile"
PREFIX = "4001"


def fast_timings(**overrides: Any) -> RegistrationTimings:
    """Domain defaults for the deadlines, but carrier retries short enough for tests."""
    values: dict[str, Any] = {
        "carrier_retry_initial": timedelta(milliseconds=100),
        "carrier_retry_max_interval": timedelta(milliseconds=500),
        "carrier_retry_max_attempts": 6,
        "carrier_call_timeout": timedelta(seconds=10),
    }
    values.update(overrides)
    return RegistrationTimings(**values)


def registration_worker(
    client: Client,
    task_queue: str,
    pool: asyncpg.Pool,
    settings: Settings,
    *,
    activities: RegistrationActivities | None = None,
    carrier: CarrierGateway | None = None,
    **kwargs: Any,
) -> Worker:
    """A worker like the production one: the registration and the service
    workflow (which the service continues as after its first run) with their
    activities."""
    acts = activities or RegistrationActivities(pool, settings, carrier or FakeCarrier(pool))
    service = ServiceActivities(pool, settings, FakeServiceCarrier(pool))
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[RegistrationWorkflow, ServiceWorkflow],
        activities=[*acts.callables(), *service.callables()],
        workflow_runner=workflow_runner(),
        **kwargs,
    )


async def fresh_number(pool: asyncpg.Pool) -> str:
    return (await add_fresh_numbers(pool, 1, prefix=PREFIX))[0]


def application(number: str | None, **overrides: Any) -> ApplicationForm:
    data = valid_application_dict(**{"carrier": CARRIER, "requested_number": number, **overrides})
    return ApplicationForm.model_validate(data)


async def start(
    client: Client,
    task_queue: str,
    form: ApplicationForm,
    *,
    timings: RegistrationTimings | None = None,
    application_id: str | None = None,
    **start_options: Any,
) -> WorkflowHandle[Any, RegistrationResult]:
    app_id = application_id or new_id("app")
    track(client, registration_workflow_id(app_id))
    return await client.start_workflow(
        WORKFLOW_NAME,
        RegistrationInput(
            application_id=app_id,
            form=form,
            submitted_by=APPLICANT,
            correlation_id=f"corr-{app_id}",
            timings=timings or fast_timings(),
        ),
        id=registration_workflow_id(app_id),
        task_queue=task_queue,
        result_type=RegistrationResult,
        **start_options,
    )


Handle = WorkflowHandle[Any, RegistrationResult]


async def _update(handle: Handle, name: str, request: Any, result_type: type[T]) -> T:
    # By name, as the API calls them.
    answer: T = await handle.execute_update(name, request, result_type=result_type)
    return answer


async def submitted(handle: Handle) -> RegistrationStatus:
    answer: RegistrationStatus = await handle.execute_update(
        UPDATE_SUBMISSION, result_type=RegistrationStatus
    )
    return answer


async def decide(handle: Handle, request: DecisionRequest) -> RegistrationStatus:
    return await _update(handle, UPDATE_DECIDE, request, RegistrationStatus)


async def approve(handle: Handle, operator: Actor = OPERATOR) -> RegistrationStatus:
    return await decide(handle, DecisionRequest(decision=Decision.APPROVE, operator=operator))


async def reject(
    handle: Handle, code: RejectionReason = RejectionReason.DOCUMENTS_INVALID
) -> RegistrationStatus:
    request = DecisionRequest(
        decision=Decision.REJECT, operator=OPERATOR, reason_code=code, reason="licence unreadable"
    )
    return await decide(handle, request)


async def request_changes(
    handle: Handle, fields: Sequence[str] = ("contact_address",), documents: Sequence[str] = ()
) -> RegistrationStatus:
    request = DecisionRequest(
        decision=Decision.REQUEST_CHANGES,
        operator=OPERATOR,
        fields=list(fields),
        documents=list(documents),
        reason="address does not match the licence",
    )
    return await decide(handle, request)


CORRECTED_ADDRESS = "广东省深圳市南山区科技园北区 2 号"


def corrected(number: str | None, **overrides: Any) -> ApplicationForm:
    """The application with the contact address ``request_changes`` asks about corrected."""
    return application(number, **{"contact_address": CORRECTED_ADDRESS, **overrides})


async def resubmit(handle: Handle, form: ApplicationForm) -> RegistrationStatus:
    request = Resubmission(form=form, actor=APPLICANT)
    return await _update(handle, UPDATE_RESUBMIT, request, RegistrationStatus)


async def pay(handle: Handle, amount_fen: int, payment_id: str | None = None) -> PaymentResult:
    request = PaymentRequest(
        payment_id=payment_id or f"pay-{uuid.uuid4().hex[:8]}", amount_fen=amount_fen, actor=APPLICANT
    )
    return await _update(handle, UPDATE_PAY, request, PaymentResult)


async def verify(
    handle: Handle, outcome: VerificationOutcome = VerificationOutcome.PASS
) -> RegistrationStatus:
    request = VerificationRequest(outcome=outcome, operator=OPERATOR, reason="documents match the holder")
    return await _update(handle, UPDATE_VERIFY, request, RegistrationStatus)


async def withdraw(handle: Handle) -> RegistrationStatus:
    request = WithdrawalRequest(actor=APPLICANT, reason="changed our mind")
    return await _update(handle, UPDATE_WITHDRAW, request, RegistrationStatus)


async def query_status(handle: Handle) -> RegistrationStatus:
    answer: RegistrationStatus = await handle.query(QUERY_STATUS, result_type=RegistrationStatus)
    return answer


async def result(handle: Handle) -> RegistrationResult:
    """How a registration that closed ended. One that reaches ACTIVE carries on
    as the service in the same run: wait for it with ``active``."""
    # Not a new handle for the run: the time-skipping server skips time only
    # while the handle its client gave out waits for a result.
    return await handle.result(follow_runs=False)


async def active(env: WorkflowEnvironment, handle: Handle) -> RegistrationResult:
    """``reached_active`` on the time-skipping server, with time skipping locked.

    At ACTIVE the service starts and at once sleeps a month until its first bill:
    were skipping unlocked (as awaiting a result does) the server could jump to
    that bill before the test looks. A test that needs time to pass before the
    activation skips it first with ``env.sleep``."""
    with env.auto_time_skipping_disabled():
        return await reached_active(handle)


async def reached_active(handle: Handle, *, within: float = 60.0) -> RegistrationResult:
    """A registration expected to reach ACTIVE: its status, from the live Query,
    once the stage is ACTIVE. The run carries on as the service, so there is no
    result to await."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        status = await query_status(handle)
        if status.stage in (Stage.ACTIVE, Stage.CLOSED):
            break
        assert loop.time() < deadline, f"{handle.id} still at {status.status}"
        await asyncio.sleep(0.05)
    assert status.stage is Stage.ACTIVE, status
    return RegistrationResult(
        application_id=status.application_id,
        outcome="active",
        status=status,
        correlation_id=f"corr-{status.application_id}",
    )


# Workflows a test started (start() tracks its own), for end_service_runs().
_started: list[tuple[Client, str]] = []


def track(client: Client, workflow_id: str) -> None:
    _started.append((client, workflow_id))


async def end_service_runs() -> None:
    """End whatever this test's registrations left running, above all the ones
    that reached ACTIVE and carry on as the service.

    Those sleep until their first bill, a month ahead, and on the shared
    time-skipping server a timer whose worker is gone stops time skipping for
    every later test. (The test server cannot describe a workflow with a
    datetime search attribute, so this does not ask which kind is running.)"""
    while _started:
        client, workflow_id = _started.pop()
        with contextlib.suppress(RPCError, RuntimeError):  # ended already, or its server is gone
            await client.get_workflow_handle(workflow_id).terminate("test over")


async def run_to_active(handle: Handle) -> RegistrationStatus:
    """Drive a submitted registration through every operator and applicant step."""
    status = await submitted(handle)
    status = await approve(handle)
    assert status.fees is not None
    result = await pay(handle, status.fees.first_prepayment_fen)
    assert result.paid_in_full
    return await verify(handle)


async def carrier_failed(pool: asyncpg.Pool, handle: Handle, *, times: int = 2) -> None:
    """Until the fake carrier has answered the registration's provisioning as
    unavailable ``times`` times (a fault injected, retries without limit)."""
    for _ in range(200):
        if (await provision_calls(pool, app_id(handle))).get("unavailable", 0) >= times:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{handle.id}: the carrier was not called {times} times")


async def stream(pool: asyncpg.Pool, application_id: str) -> list[Event]:
    async with pool.acquire() as conn:
        return await events.load_stream(conn, application_id)


async def read_model(pool: asyncpg.Pool, application_id: str) -> asyncpg.Record | None:
    async with pool.acquire() as conn:
        return await events.get_registration(conn, application_id)


async def number_row(pool: asyncpg.Pool, number: str) -> asyncpg.Record:
    row = await pool.fetchrow("SELECT * FROM number_inventory WHERE number = $1", number)
    assert row is not None
    return row


async def provision_calls(pool: asyncpg.Pool, application_id: str) -> dict[str, int]:
    async with pool.acquire() as conn:
        return await fake_carrier.count_calls(conn, f"{application_id}/provision")


async def carrier_order(pool: asyncpg.Pool, application_id: str) -> fake_carrier.Order | None:
    async with pool.acquire() as conn:
        return await fake_carrier.get_order(conn, f"{application_id}/provision")


async def inject_fault(pool: asyncpg.Pool, number: str, **fault: Any) -> None:
    async with pool.acquire() as conn:
        await fake_carrier.inject_fault(conn, number, **fault)


def in_days(now: datetime, days: float) -> datetime:
    return now + timedelta(days=days)


def app_id(handle: Handle) -> str:
    return handle.id.removeprefix("registration-")

"""Regenerate the committed workflow histories replayed by test_replay.py.

    .venv/bin/python -m tests.workflows.make_histories

Runs each scenario to its end on the time-skipping server against a throwaway
embedded PostgreSQL (or TEST_DATABASE_URL), and writes one JSON history per
scenario to tests/workflows/histories/. Payloads are encrypted with the test
key (tests/conftest.py), as any history would be. Registrations that reach
ACTIVE carry on as the service in the same run: their history is written once
the service is asleep (``active*``), or once it has ended (``service_*``).

Before the first release (CONTRIBUTING.md) regenerate whenever a change to the
workflows is meant to change the commands they emit, and review the diff of
the histories as part of the change. From the first release on, such a change is
versioned with ``workflow.patched()`` instead, and the histories it would break
stay as they are: a failing replay test then says the change would break
registrations already in flight.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import asyncpg
from temporalio.client import Client, WorkflowHistory
from temporalio.testing import WorkflowEnvironment

from app.db import create_pool, migrate
from app.embedded import EmbeddedPostgres, free_port, temporal_test_server_path
from app.settings import Settings
from app.temporal import data_converter
from domain.timeline import Status
from tests.conftest import TEST_KEYS, register_search_attributes
from tests.domain.factories import document_dict
from tests.workflows import support as s
from workflows.contracts import PaymentRequest, VerificationOutcome
from workflows.service_contracts import (
    DEFAULT_CYCLES_PER_RUN,
    UPDATE_SERVICE_PAY,
    UPDATE_TERMINATE,
    ServicePaymentResult,
    ServiceStatus,
    TerminationRequest,
)

HISTORIES = Path(__file__).parent / "histories"

Scenario = Callable[[Client, str, asyncpg.Pool], Awaitable[s.Handle]]


async def active(client: Client, tq: str, pool: asyncpg.Pool) -> s.Handle:
    handle = await s.start(client, tq, s.application(await s.fresh_number(pool)))
    await s.run_to_active(handle)
    return handle


async def active_after_changes_and_carrier_retries(client: Client, tq: str, pool: asyncpg.Pool) -> s.Handle:
    number = await s.fresh_number(pool)
    await s.inject_fault(pool, number, fail_times=2)
    handle = await s.start(client, tq, s.application(number))
    await s.submitted(handle)
    await s.request_changes(handle)
    await s.resubmit(handle, s.corrected(number, company_name="新示例科技"))
    status = await s.approve(handle)
    assert status.fees is not None
    await s.pay(handle, status.fees.first_prepayment_fen - 100, payment_id="p-1")
    await s.pay(handle, status.fees.first_prepayment_fen - 100, payment_id="p-1")
    await s.pay(handle, 100, payment_id="p-2")
    await s.verify(handle)
    return handle


async def active_at_agreed_time(
    client: Client, tq: str, pool: asyncpg.Pool, env: WorkflowEnvironment
) -> s.Handle:
    at = (await env.get_current_time()) + timedelta(days=3)
    handle = await s.start(
        client, tq, s.application(await s.fresh_number(pool), activation_at=at.isoformat())
    )
    await s.run_to_active(handle)
    await env.sleep(timedelta(days=3))
    return handle


async def rejected(client: Client, tq: str, pool: asyncpg.Pool) -> s.Handle:
    handle = await s.start(client, tq, s.application(await s.fresh_number(pool)))
    await s.submitted(handle)
    await s.reject(handle)
    return handle


async def abandoned(client: Client, tq: str, pool: asyncpg.Pool) -> s.Handle:
    handle = await s.start(client, tq, s.application(await s.fresh_number(pool)))
    await s.submitted(handle)
    await s.request_changes(handle)
    return handle  # the resubmission window runs out


async def overdue_then_prepayment_expired(
    client: Client, tq: str, pool: asyncpg.Pool, env: WorkflowEnvironment
) -> s.Handle:
    handle = await s.start(client, tq, s.application(await s.fresh_number(pool)))
    status = await s.submitted(handle)
    assert status.next_deadline is not None
    await env.sleep(status.next_deadline - await env.get_current_time() + timedelta(days=5))
    await s.approve(handle)
    await s.pay(handle, 100)
    return handle  # the rest never comes


async def verification_failed(client: Client, tq: str, pool: asyncpg.Pool) -> s.Handle:
    handle = await s.start(client, tq, s.application(await s.fresh_number(pool)))
    await s.submitted(handle)
    status = await s.approve(handle)
    assert status.fees is not None
    await s.pay(handle, status.fees.first_prepayment_fen)
    await s.verify(handle, VerificationOutcome.FAIL)
    return handle


async def verification_expired(client: Client, tq: str, pool: asyncpg.Pool) -> s.Handle:
    handle = await s.start(client, tq, s.application(await s.fresh_number(pool)))
    await s.submitted(handle)
    status = await s.approve(handle)
    assert status.fees is not None
    await s.pay(handle, status.fees.first_prepayment_fen)
    return handle


async def withdrawn_while_provisioning(client: Client, tq: str, pool: asyncpg.Pool) -> s.Handle:
    number = await s.fresh_number(pool)
    await s.inject_fault(pool, number, fail_times=10_000)
    handle = await s.start(
        client, tq, s.application(number), timings=s.fast_timings(carrier_retry_max_attempts=0)
    )
    await s.run_to_active(handle)
    await s.carrier_failed(pool, handle)
    await s.withdraw(handle)
    return handle


async def provisioning_refused(client: Client, tq: str, pool: asyncpg.Pool) -> s.Handle:
    number = await s.fresh_number(pool)
    await s.inject_fault(pool, number, reject=True)
    handle = await s.start(client, tq, s.application(number))
    await s.run_to_active(handle)
    return handle


async def invalid(client: Client, tq: str, pool: asyncpg.Pool) -> s.Handle:
    form = s.application(await s.fresh_number(pool), documents=[document_dict("business_licence")])
    handle = await s.start(client, tq, form)
    await s.submitted(handle)
    return handle


async def cancelled(client: Client, tq: str, pool: asyncpg.Pool) -> s.Handle:
    handle = await s.start(client, tq, s.application(await s.fresh_number(pool)))
    await s.submitted(handle)
    await s.approve(handle)
    await handle.cancel()
    return handle


EXPECTED: dict[str, Status | None] = {
    "active": Status.ACTIVE,
    "active_after_changes_and_carrier_retries": Status.ACTIVE,
    "active_at_agreed_time": Status.ACTIVE,
    "rejected": Status.REJECTED,
    "abandoned": Status.ABANDONED,
    "overdue_then_prepayment_expired": Status.PREPAYMENT_EXPIRED,
    "verification_failed": Status.VERIFICATION_FAILED,
    "verification_expired": Status.VERIFICATION_EXPIRED,
    "withdrawn_while_provisioning": Status.WITHDRAWN,
    "provisioning_refused": Status.PROVISIONING_FAILED,
    "invalid": Status.INVALID,
    "cancelled": None,  # the workflow ends cancelled, its registration withdrawn
}


async def service_terminated(env: WorkflowEnvironment, tq: str, pool: asyncpg.Pool) -> WorkflowHistory:
    """A registration reaches ACTIVE and carries on as the service in the same
    run, which takes a payment, bills a cycle, is terminated (销号) and, after
    the quarantine, releases the number: the run completes."""
    handle = await active(env.client, tq, pool)
    await s.active(env, handle)
    service = env.client.get_workflow_handle(handle.id, run_id=handle.result_run_id)
    holder = s.APPLICANT
    await service.execute_update(
        UPDATE_SERVICE_PAY,
        PaymentRequest(payment_id="top-up-1", amount_fen=10_000, actor=holder),
        result_type=ServicePaymentResult,
    )
    await env.sleep(timedelta(days=31))
    await service.execute_update(
        UPDATE_TERMINATE, TerminationRequest(actor=holder, reason="moving"), result_type=ServiceStatus
    )
    await env.sleep(timedelta(days=91))  # the quarantine
    ended = await service.result()
    assert ended["outcome"] == "terminated", ended
    return await service.fetch_history()


async def service_continued_as_new(env: WorkflowEnvironment, tq: str, pool: asyncpg.Pool) -> WorkflowHistory:
    """A registration's run serves its number for a run's worth of billing
    cycles, then continues as new into ServiceWorkflow."""
    handle = await active(env.client, tq, pool)
    await s.active(env, handle)
    await env.sleep(timedelta(days=30 * DEFAULT_CYCLES_PER_RUN + 1))
    run = env.client.get_workflow_handle(handle.id, run_id=handle.result_run_id)
    history = await run.fetch_history()
    assert history.events[-1].HasField("workflow_execution_continued_as_new_event_attributes")
    return history


def write(name: str, history: WorkflowHistory) -> Path:
    path = HISTORIES / f"{name}.json"
    path.write_text(history.to_json() + "\n")
    print(f"wrote {path.relative_to(Path.cwd())} ({len(history.events)} events)")
    return path


async def generate(database_url: str) -> list[Path]:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        environment="test",
        database_url=database_url,
        temporal_address="unused:0",
        payload_encryption_keys=TEST_KEYS,
    )
    pool = await create_pool(database_url, min_size=1, max_size=10)
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=data_converter(settings.encryption_keys),
        test_server_existing_path=str(temporal_test_server_path()),
    )
    written: list[Path] = []
    try:
        await register_search_attributes(env.client)
        tq = "histories"
        scenarios: dict[str, Scenario] = {
            "active": active,
            "active_after_changes_and_carrier_retries": active_after_changes_and_carrier_retries,
            "active_at_agreed_time": lambda c, t, p: active_at_agreed_time(c, t, p, env),
            "rejected": rejected,
            "abandoned": abandoned,
            "overdue_then_prepayment_expired": lambda c, t, p: overdue_then_prepayment_expired(c, t, p, env),
            "verification_failed": verification_failed,
            "verification_expired": verification_expired,
            "withdrawn_while_provisioning": withdrawn_while_provisioning,
            "provisioning_refused": provisioning_refused,
            "invalid": invalid,
            "cancelled": cancelled,
        }
        HISTORIES.mkdir(exist_ok=True)
        async with s.registration_worker(env.client, tq, pool, settings):
            for name, scenario in scenarios.items():
                handle = await scenario(env.client, tq, pool)
                if EXPECTED[name] is Status.ACTIVE:
                    await s.active(env, handle)
                    await asyncio.sleep(0.5)  # the service's first task: until asleep
                else:
                    try:
                        result = await s.result(handle)
                        assert result.status.status is EXPECTED[name], (name, result.status.status)
                    except Exception:
                        if EXPECTED[name] is not None:
                            raise
                run = env.client.get_workflow_handle(handle.id, run_id=handle.result_run_id)
                written.append(write(name, await run.fetch_history()))
            written.append(write("service_terminated", await service_terminated(env, tq, pool)))
            written.append(write("service_continued_as_new", await service_continued_as_new(env, tq, pool)))
    finally:
        await env.shutdown()
        await pool.close()
    return written


def main() -> None:
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        migrate(url)
        asyncio.run(generate(url))
        return
    tmp = Path(tempfile.mkdtemp(prefix="h400-histories-"))
    server = EmbeddedPostgres(tmp, free_port(), database="hotline400_histories")
    server.start()
    try:
        migrate(server.url)
        asyncio.run(generate(server.url))
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

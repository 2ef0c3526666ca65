"""The harness itself: the servers are real and the migrations applied."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import asyncpg
import pytest
from temporalio import workflow
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from app.worker import workflow_runner
from workflows.search_attributes import STAGE


async def test_migrations_created_the_core_tables(db: asyncpg.Connection) -> None:
    tables = {
        r["table_name"]
        for r in await db.fetch(
            "SELECT table_name FROM information_schema.tables WHERE table_schema='public'"
        )
    }
    assert {"carrier", "carrier_prefix", "number_inventory", "domain_event", "registration"} <= tables
    assert await db.fetchval("SELECT carrier_code FROM carrier_prefix WHERE prefix='4008'") == "china_telecom"


async def test_event_log_refuses_update_and_delete(db: asyncpg.Connection) -> None:
    await db.execute(
        """INSERT INTO domain_event (stream_id, version, event_id, event_type, actor, actor_role,
           correlation_id, occurred_at) VALUES ('s-harness', 1, $1, 'Tested', 'me', 'system', 'c', now())""",
        uuid.uuid4(),
    )
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await db.execute("UPDATE domain_event SET actor='other' WHERE stream_id='s-harness'")


async def test_number_row_cannot_be_held_without_a_registration(db: asyncpg.Connection) -> None:
    with pytest.raises(asyncpg.CheckViolationError):
        await db.execute(
            """INSERT INTO number_inventory (number, carrier_code, status, tier, has_four,
               min_monthly_spend_fen, hold_expires_at) VALUES ('4006000001','china_unicom','held','standard',
               false, 0, now())"""
        )


@workflow.defn(sandboxed=True)
class _SleepyWorkflow:
    @workflow.run
    async def run(self) -> str:
        workflow.upsert_search_attributes([STAGE.value_set("testing")])
        await workflow.sleep(timedelta(days=30))
        return "woke"


async def test_dev_server_runs_workflows_and_indexes_search_attributes(
    temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with Worker(
        temporal_env.client,
        task_queue=task_queue,
        workflows=[_SleepyWorkflow],
        workflow_runner=workflow_runner(),
    ):
        handle = await temporal_env.client.start_workflow(
            _SleepyWorkflow.run, id=f"harness-{uuid.uuid4()}", task_queue=task_queue
        )
        for _ in range(50):
            desc = await handle.describe()
            if desc.typed_search_attributes.get(STAGE) == "testing":
                break
            await asyncio.sleep(0.1)
        assert desc.typed_search_attributes.get(STAGE) == "testing"
        await handle.terminate()


async def test_time_skipping_server_skips_a_month(time_env: WorkflowEnvironment, task_queue: str) -> None:
    async with Worker(
        time_env.client, task_queue=task_queue, workflows=[_SleepyWorkflow], workflow_runner=workflow_runner()
    ):
        result = await time_env.client.execute_workflow(
            _SleepyWorkflow.run, id=f"harness-{uuid.uuid4()}", task_queue=task_queue
        )
    assert result == "woke"

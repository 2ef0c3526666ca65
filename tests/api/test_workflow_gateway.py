"""WorkflowGateway maps what Temporal answers to HTTP errors a client can act on."""

from __future__ import annotations

import asyncio
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from temporalio import workflow
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from api.errors import ServiceUnavailable
from api.services.workflow import WorkflowGateway

_failing: set[str] = set()


@workflow.defn(name="GatewayTaskFails", sandboxed=False)
class TaskFails:
    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: False)

    @workflow.signal
    def break_tasks(self) -> None:
        _failing.add(workflow.info().workflow_id)

    @workflow.signal
    def nudge(self) -> None:
        if workflow.info().workflow_id in _failing:
            # Not an ApplicationError: the workflow task fails and is retried.
            raise RuntimeError("this workflow's tasks fail, as after a crash until it recovers")

    @workflow.update
    def ping(self) -> str:
        return "pong"


async def test_an_update_on_a_workflow_whose_task_fails_is_a_503_not_a_500(
    temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    """After Temporal or a worker crashed, a workflow's task can fail for a while;
    Temporal then refuses Updates ("Workflow Task in failed state"). That is a
    moment to retry, as when Temporal is down: 503 with Retry-After."""
    client = temporal_env.client
    workflow_id = f"gateway-{uuid.uuid4()}"
    gateway = WorkflowGateway(client, task_queue, update_timeout=5)
    with ThreadPoolExecutor(max_workers=1) as executor:
        async with Worker(client, task_queue=task_queue, workflows=[TaskFails], activity_executor=executor):
            handle = await client.start_workflow(TaskFails.run, id=workflow_id, task_queue=task_queue)
            assert await gateway.update(workflow_id, "ping", None, str) == "pong"
            await handle.signal(TaskFails.break_tasks)
            await handle.signal(TaskFails.nudge)
            for _ in range(200):  # until the task has failed a few times
                if (await handle.describe()).raw_description.pending_workflow_task.attempt >= 3:
                    break
                await asyncio.sleep(0.1)
            with pytest.raises(ServiceUnavailable) as refused:
                await gateway.update(workflow_id, "ping", None, str)
            assert (refused.value.headers or {}).get("Retry-After")
            await handle.terminate("test over")
    _failing.discard(workflow_id)

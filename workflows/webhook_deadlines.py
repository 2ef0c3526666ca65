"""The deadline sweeper: "deadline approaching" notices, from a durable timer.

A registration's stream is written only by its own workflow (it owns the
stream's versions), so a notice cannot be appended there from outside. This
workflow, one per namespace, runs the sweep activity every ``interval``: it
reads ``registration.next_deadline`` from the read model, records each
deadline that falls within the notice period once (``deadline_notice``, unique
per application, deadline instant and kind), and the notice's insert queues
its deliveries like an event's (migrations/..._webhooks.sql).
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from workflows.webhook_contracts import (
        ACTIVITY_SWEEP_DEADLINES,
        SWEEPER_WORKFLOW_NAME,
        SweeperInput,
        SweepResult,
    )


@workflow.defn(name=SWEEPER_WORKFLOW_NAME, sandboxed=False)
class WebhookDeadlineSweeperWorkflow:
    @workflow.run
    async def run(self, inp: SweeperInput) -> None:
        for _ in range(inp.sweeps_per_run):
            await workflow.execute_activity(
                ACTIVITY_SWEEP_DEADLINES,
                result_type=SweepResult,
                start_to_close_timeout=timedelta(minutes=1),
                retry_policy=RetryPolicy(
                    initial_interval=min(inp.interval, timedelta(seconds=1)),
                    maximum_interval=max(inp.interval, timedelta(seconds=1)),
                ),
            )
            await workflow.sleep(inp.interval)
        workflow.continue_as_new(inp)

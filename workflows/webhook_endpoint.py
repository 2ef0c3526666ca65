"""One workflow per webhook endpoint: the durable driver of its deliveries.

Why one per endpoint rather than one per delivery: deliveries to an endpoint
must reach it in event order per application, and an endpoint that is down
should cost one timer, not one workflow per queued message. The deliveries
themselves are rows (``webhook_delivery``), written by the event's own
transaction; this workflow runs the sender activity (activities/webhooks.py),
which sends every due delivery, at most one per application at a time, oldest
first, and records each attempt and its next retry time. Between passes the
workflow sleeps on a durable timer until the next retry is due, or until a
``wake`` signal says new deliveries were queued. With nothing pending it
ends; the next queued delivery starts it again (signal-with-start).

A worker that dies mid-pass loses nothing: the activity's heartbeat times out,
Temporal runs it again elsewhere, and the deliveries it had taken are leased
only for longer than one attempt can last, so the new pass sends them again
with the same ``webhook-id`` (the documented at-least-once retry).
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from workflows.webhook_contracts import (
        ACTIVITY_DELIVER,
        ENDPOINT_WORKFLOW_NAME,
        SIGNAL_WAKE,
        DeliverOutcome,
        DeliverRequest,
        EndpointInput,
    )

# Infrastructure failures of a pass (database down, worker lost) are retried
# for as long as it takes; receivers' failures are the sender's business and
# never fail the activity.
_PASS_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30))


@workflow.defn(name=ENDPOINT_WORKFLOW_NAME, sandboxed=False)
class WebhookEndpointWorkflow:
    def __init__(self) -> None:
        self._woken = False

    @workflow.signal(name=SIGNAL_WAKE)
    def wake(self) -> None:
        self._woken = True

    @workflow.run
    async def run(self, inp: EndpointInput) -> str:
        for _ in range(inp.passes_per_run):
            self._woken = False
            outcome: DeliverOutcome = await workflow.execute_activity(
                ACTIVITY_DELIVER,
                DeliverRequest(endpoint_id=inp.endpoint_id),
                result_type=DeliverOutcome,
                start_to_close_timeout=inp.activity_timeout,
                heartbeat_timeout=inp.heartbeat_timeout,
                retry_policy=_PASS_RETRY,
            )
            if outcome.stopped is not None:
                return outcome.stopped
            if self._woken:
                continue
            if outcome.next_due_in is None:
                # Nothing pending. A signal that arrives while this completes
                # makes the server refuse the completion, and the run goes on.
                return "idle"
            # Until the next retry is due, or a signal says more was queued.
            with contextlib.suppress(asyncio.TimeoutError):
                await workflow.wait_condition(
                    lambda: self._woken, timeout=timedelta(seconds=max(outcome.next_due_in, 0.001))
                )
        workflow.continue_as_new(inp)

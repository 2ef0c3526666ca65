"""The webhook workflows' contract: names, ids and the messages between the
workflows, their activities and whoever wakes them (activities/webhook_waker.py).

One ``WebhookEndpointWorkflow`` per endpoint, id ``webhook_workflow_id(endpoint_id)``,
started or woken by a ``wake`` signal (signal-with-start) whenever deliveries are
queued for it; one ``WebhookDeadlineSweeperWorkflow`` per namespace.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel, ConfigDict

ENDPOINT_WORKFLOW_NAME = "WebhookEndpointWorkflow"
SWEEPER_WORKFLOW_NAME = "WebhookDeadlineSweeperWorkflow"
SWEEPER_WORKFLOW_ID = "webhook-deadline-sweeper"
SIGNAL_WAKE = "wake"

ACTIVITY_DELIVER = "webhooks.deliver"
ACTIVITY_SWEEP_DEADLINES = "webhooks.sweep_deadlines"

_MODEL = ConfigDict(frozen=True, extra="ignore")


def webhook_workflow_id(endpoint_id: str) -> str:
    return f"webhook-endpoint-{endpoint_id}"


class EndpointInput(BaseModel):
    """Start argument of an endpoint's workflow (timeouts resolved from settings
    by the starter, since a workflow may not read them)."""

    model_config = _MODEL

    endpoint_id: str
    activity_timeout: timedelta = timedelta(minutes=5)
    heartbeat_timeout: timedelta = timedelta(seconds=20)
    # Passes before the run continues as new, to keep its history short.
    passes_per_run: int = 200


class DeliverRequest(BaseModel):
    model_config = _MODEL

    endpoint_id: str


class DeliverOutcome(BaseModel):
    """What one pass of the sender left behind."""

    model_config = _MODEL

    sent: int = 0
    # The endpoint is gone or disabled: the workflow ends.
    stopped: str | None = None
    # Seconds until the next pending delivery may be tried (a retry's backoff,
    # or a lease to run out); None when nothing is pending at all.
    next_due_in: float | None = None


class SweeperInput(BaseModel):
    model_config = _MODEL

    interval: timedelta = timedelta(minutes=5)
    sweeps_per_run: int = 100


class SweepResult(BaseModel):
    model_config = _MODEL

    noticed: int = 0

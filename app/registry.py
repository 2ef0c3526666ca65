"""What the worker runs: every workflow class and every activity callable.

Kept in one place so the worker process, the tests and the benches register the
same set.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import asyncpg

from app.settings import Settings

if TYPE_CHECKING:
    from activities.carrier import CarrierGateway
    from activities.service_carrier import ServiceCarrierGateway
    from activities.webhooks import LocalWakeups


def workflow_classes() -> Sequence[type]:
    from workflows.calendar_recompute import CalendarRecomputeWorkflow
    from workflows.registration import RegistrationWorkflow
    from workflows.service import ServiceWorkflow
    from workflows.webhook_deadlines import WebhookDeadlineSweeperWorkflow
    from workflows.webhook_endpoint import WebhookEndpointWorkflow

    return [
        RegistrationWorkflow,
        ServiceWorkflow,
        WebhookEndpointWorkflow,
        WebhookDeadlineSweeperWorkflow,
        CalendarRecomputeWorkflow,
    ]


def carrier_gateway(pool: asyncpg.Pool, settings: Settings) -> CarrierGateway:
    """The carrier provisioning client. Only the fake carrier exists so far; a real
    carrier integration is chosen here when there is one."""
    from activities.carrier import FakeCarrier
    from activities.metered_carrier import MeteredCarrier

    return MeteredCarrier(FakeCarrier(pool))


def service_carrier_gateway(pool: asyncpg.Pool, settings: Settings) -> ServiceCarrierGateway:
    """The carrier's interface for numbers in service (restrict, suspend, resume...);
    the fake carrier too until a real integration exists."""
    from activities.metered_carrier import MeteredServiceCarrier
    from activities.service_carrier import FakeServiceCarrier

    return MeteredServiceCarrier(FakeServiceCarrier(pool))


def activity_callables(
    pool: asyncpg.Pool, settings: Settings, webhook_wakeups: LocalWakeups | None = None
) -> Sequence[Callable[..., Any]]:
    """``webhook_wakeups``: shared with the process's webhook waker, if it runs one."""
    from activities.calendar import CalendarActivities
    from activities.registration import RegistrationActivities
    from activities.service import ServiceActivities
    from activities.webhooks import WebhookActivities

    registration = RegistrationActivities(pool, settings, carrier_gateway(pool, settings))
    service = ServiceActivities(pool, settings, service_carrier_gateway(pool, settings))
    webhooks = WebhookActivities(pool, settings, wakeups=webhook_wakeups)
    calendar = CalendarActivities(pool)
    return [*registration.callables(), *service.callables(), *webhooks.callables(), *calendar.callables()]

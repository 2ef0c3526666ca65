"""The carrier's interface for a number in service: restrict, suspend, freeze,
resume and take back (deprovision), as an extension of ``activities.carrier``.

Kept apart from ``CarrierGateway`` (provisioning) so that neither interface has
to change for the other; a real carrier integration implements both. Errors are
the same: ``CarrierUnavailable`` (try again) and ``CarrierRejected`` (for good).

Every call names its target state rather than a toggle and carries a
``request_id``, so a repeated call is harmless: the service activity is retried
and a worker may die after the carrier acted but before Temporal heard of it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

import asyncpg
from pydantic import BaseModel, ConfigDict

from activities.carrier import CarrierRejected, CarrierUnavailable, FakeCarrier
from activities.repositories import fake_carrier, fake_carrier_service
from domain.service_rules import CarrierAction

log = logging.getLogger("carrier")

__all__ = [
    "CarrierRejected",
    "CarrierUnavailable",
    "FakeServiceCarrier",
    "ServiceCarrierGateway",
    "ServiceChangeRequest",
]


class ServiceChangeRequest(BaseModel):
    model_config = ConfigDict(frozen=True)

    request_id: str
    registration_id: str
    number: str
    carrier: str
    action: CarrierAction


class ServiceCarrierGateway(Protocol):
    async def change_service(self, request: ServiceChangeRequest) -> None:
        """Put the number in the state ``request.action`` names; idempotent by ``request_id``."""
        ...


class FakeServiceCarrier(FakeCarrier):
    """The fake carrier (PostgreSQL-backed, faults injected per number with
    ``fake_carrier.inject_fault``), able to change service as well as provision."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        super().__init__(pool)
        self._service_pool = pool

    async def change_service(self, request: ServiceChangeRequest) -> None:
        action = request.action.value
        async with self._service_pool.acquire() as conn:
            async with conn.transaction():
                fault = await fake_carrier.take_fault(conn, request.number)
            if fault is not None and fault.delay_ms:
                await asyncio.sleep(fault.delay_ms / 1000)
            if fault is not None and fault.reject:
                await fake_carrier_service.record_call(
                    conn, request.request_id, request.number, action, "rejected"
                )
                raise CarrierRejected("number_refused", f"the carrier refused to {action} this number")
            if fault is not None and fault.fail_times > 0:
                await fake_carrier_service.record_call(
                    conn, request.request_id, request.number, action, "unavailable"
                )
                raise CarrierUnavailable("the carrier's service interface is unavailable")
            async with conn.transaction():
                applied = await fake_carrier_service.apply_request(
                    conn, request.request_id, request.number, request.carrier, action
                )
                outcome = "applied" if applied else "already_applied"
                await fake_carrier_service.record_call(
                    conn, request.request_id, request.number, action, outcome
                )
        log.info(
            "fake carrier changed service",
            extra={"number": request.number, "action": action, "outcome": outcome},
        )

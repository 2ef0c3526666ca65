"""The carrier's provisioning interface, and the fake carrier used by tests and the dev stack.

A real carrier integration implements ``CarrierGateway``. Both operations must be
idempotent by ``request_id``: the provisioning activity is retried with backoff,
and a worker may die after the carrier did the work but before Temporal heard
of it, so the same request can arrive more than once.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from datetime import UTC, datetime
from typing import Protocol

import asyncpg
from pydantic import BaseModel, ConfigDict

from activities.repositories import fake_carrier

log = logging.getLogger("carrier")


class ProvisionRequest(BaseModel):
    model_config = ConfigDict(frozen=True)

    request_id: str
    registration_id: str
    number: str
    carrier: str
    destinations: list[str]


class ProvisionResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    request_id: str
    reference: str
    provisioned_at: datetime


class CarrierUnavailable(Exception):
    """The carrier could not be reached or failed transiently: try again later."""


class CarrierRejected(Exception):
    """The carrier refused the request for good: retrying will not help."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(f"{code}: {message}")


class CarrierGateway(Protocol):
    async def provision(self, request: ProvisionRequest) -> ProvisionResult:
        """Provision the number so that it rings through to the destinations."""
        ...

    async def cancel(self, request_id: str, number: str, carrier: str) -> None:
        """Cancel the request, undoing its provisioning if it got through; a later
        ``provision`` with the same ``request_id`` is refused."""
        ...


class FakeCarrier:
    """A carrier kept in PostgreSQL (``fake_carrier_*``), with failures injected per number.

    Kept in the database rather than in memory so that a test or a developer can
    make a worker in another process fail (``inject_fault``), and so that orders
    survive a worker restart as they would at a real carrier.
    """

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def provision(self, request: ProvisionRequest) -> ProvisionResult:
        reference = _reference(request.request_id)
        async with self._pool.acquire() as conn:
            # The common call (no fault injected, first of its request) in one
            # statement: a fake should cost next to nothing in a benchmark.
            if await fake_carrier.provision_first_clear(
                conn, request.request_id, request.number, request.carrier, reference
            ):
                log.info(
                    "fake carrier provisioned", extra={"number": request.number, "outcome": "provisioned"}
                )
                return ProvisionResult(
                    request_id=request.request_id, reference=reference, provisioned_at=datetime.now(UTC)
                )
            async with conn.transaction():
                fault = await fake_carrier.take_fault(conn, request.number)
            if fault is not None and fault.delay_ms:
                await asyncio.sleep(fault.delay_ms / 1000)
            if fault is not None and fault.reject:
                await fake_carrier.record_call(
                    conn, request.request_id, request.number, "provision", "rejected"
                )
                raise CarrierRejected("number_refused", "the carrier refused to provision this number")
            if fault is not None and fault.fail_times > 0:
                await fake_carrier.record_call(
                    conn, request.request_id, request.number, "provision", "unavailable"
                )
                raise CarrierUnavailable("the carrier's provisioning service is unavailable")
            async with conn.transaction():
                existing = await fake_carrier.get_order(conn, request.request_id)
                if existing is not None and existing.status == "cancelled":
                    await fake_carrier.record_call(
                        conn, request.request_id, request.number, "provision", "refused_cancelled"
                    )
                    raise CarrierRejected("order_cancelled", "the order was cancelled")
                order = await fake_carrier.provision_order(
                    conn, request.request_id, request.number, request.carrier, reference
                )
                outcome = "provisioned" if existing is None else "already_provisioned"
                await fake_carrier.record_call(conn, request.request_id, request.number, "provision", outcome)
        log.info("fake carrier provisioned", extra={"number": request.number, "outcome": outcome})
        return ProvisionResult(
            request_id=request.request_id, reference=order.reference, provisioned_at=datetime.now(UTC)
        )

    async def cancel(self, request_id: str, number: str, carrier: str) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            await fake_carrier.cancel_order(conn, request_id, number, carrier)
            await fake_carrier.record_call(conn, request_id, number, "cancel", "cancelled")
        log.info("fake carrier cancelled", extra={"number": number})


def _reference(request_id: str) -> str:
    # Derived from the request so that a retried call names the same order.
    return "FAKE-" + hashlib.sha256(request_id.encode()).hexdigest()[:12].upper()

"""Carrier gateways that count and time every call (``hotline400_carrier_calls``,
``hotline400_carrier_call_duration_seconds``), whatever carrier sits behind them.

A decorator rather than code in each integration, so a real carrier's client is
measured the same way as the fake one from the day it is plugged in.
"""

from __future__ import annotations

from activities.carrier import CarrierGateway, ProvisionRequest, ProvisionResult
from activities.service_carrier import ServiceCarrierGateway, ServiceChangeRequest
from app.metrics import carrier_call


class MeteredCarrier:
    def __init__(self, inner: CarrierGateway) -> None:
        self._inner = inner

    async def provision(self, request: ProvisionRequest) -> ProvisionResult:
        with carrier_call(request.carrier, "provision"):
            return await self._inner.provision(request)

    async def cancel(self, request_id: str, number: str, carrier: str) -> None:
        with carrier_call(carrier, "cancel"):
            await self._inner.cancel(request_id, number, carrier)


class MeteredServiceCarrier:
    def __init__(self, inner: ServiceCarrierGateway) -> None:
        self._inner = inner

    async def change_service(self, request: ServiceChangeRequest) -> None:
        with carrier_call(request.carrier, request.action.value):
            await self._inner.change_service(request)

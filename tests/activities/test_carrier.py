"""The fake carrier: idempotent by request id, with failures injected through the database."""

from __future__ import annotations

import argparse
import asyncio
import uuid

import asyncpg
import pytest

from activities.carrier import CarrierRejected, CarrierUnavailable, FakeCarrier, ProvisionRequest
from activities.carrier_cli import add_fake_carrier_commands
from activities.repositories import fake_carrier
from tests.workflows import support as s


def request(number: str) -> ProvisionRequest:
    return ProvisionRequest(
        request_id=f"req-{uuid.uuid4()}",
        registration_id="reg-1",
        number=number,
        carrier=s.CARRIER,
        destinations=["13800138000"],
    )


async def calls(pool: asyncpg.Pool, request_id: str, operation: str = "provision") -> dict[str, int]:
    async with pool.acquire() as conn:
        return await fake_carrier.count_calls(conn, request_id, operation)


async def test_a_repeated_request_provisions_once(pool) -> None:
    carrier = FakeCarrier(pool)
    req = request(await s.fresh_number(pool))
    first = await carrier.provision(req)
    second = await carrier.provision(req)
    assert first.reference == second.reference
    assert await calls(pool, req.request_id) == {"provisioned": 1, "already_provisioned": 1}
    async with pool.acquire() as conn:
        order = await fake_carrier.get_order(conn, req.request_id)
    assert order is not None and (order.status, order.provisions) == ("provisioned", 1)


async def test_injected_transient_failures_then_success(pool) -> None:
    carrier = FakeCarrier(pool)
    req = request(await s.fresh_number(pool))
    await s.inject_fault(pool, req.number, fail_times=2)
    for _ in range(2):
        with pytest.raises(CarrierUnavailable):
            await carrier.provision(req)
    await carrier.provision(req)
    assert await calls(pool, req.request_id) == {"unavailable": 2, "provisioned": 1}


async def test_an_injected_refusal_is_permanent(pool) -> None:
    carrier = FakeCarrier(pool)
    req = request(await s.fresh_number(pool))
    await s.inject_fault(pool, req.number, reject=True)
    for _ in range(2):
        with pytest.raises(CarrierRejected) as caught:
            await carrier.provision(req)
    assert caught.value.code == "number_refused"
    async with pool.acquire() as conn:
        await fake_carrier.clear_fault(conn, req.number)
    await carrier.provision(req)


async def test_a_cancelled_request_is_never_provisioned_later(pool) -> None:
    carrier = FakeCarrier(pool)
    req = request(await s.fresh_number(pool))
    await carrier.cancel(req.request_id, req.number, req.carrier)
    await carrier.cancel(req.request_id, req.number, req.carrier)
    with pytest.raises(CarrierRejected) as caught:
        await carrier.provision(req)
    assert caught.value.code == "order_cancelled"

    provisioned = request(req.number)
    await carrier.provision(provisioned)
    await carrier.cancel(provisioned.request_id, provisioned.number, provisioned.carrier)
    async with pool.acquire() as conn:
        order = await fake_carrier.get_order(conn, provisioned.request_id)
    assert order is not None and order.status == "cancelled"


def test_the_dev_stack_cli_injects_and_clears_faults(settings, capsys) -> None:
    parser = argparse.ArgumentParser()
    add_fake_carrier_commands(parser.add_subparsers(dest="command"))

    def run(*argv: str) -> int:
        args = parser.parse_args(argv)
        code: int = args.handler(args, settings)
        return code

    async def read(number: str) -> asyncpg.Record | None:
        conn = await asyncpg.connect(settings.database_url)
        try:
            return await conn.fetchrow("SELECT * FROM fake_carrier_fault WHERE number = $1", number)
        finally:
            await conn.close()

    number = "4001999999"
    assert run("fake-carrier", "fault", number, "--fail-times", "2", "--delay-ms", "5") == 0
    row = asyncio.run(read(number))
    assert row is not None and (row["fail_times"], row["reject"], row["delay_ms"]) == (2, False, 5)
    assert run("fake-carrier", "clear", number) == 0
    assert asyncio.run(read(number)) is None
    assert "fault set for 4001999999" in capsys.readouterr().out

"""The service activity against real PostgreSQL and the fake carrier: exactly
once, all or nothing, and the number's inventory status following the service."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.repositories import fake_carrier, fake_carrier_service, inventory
from activities.repositories import service as service_repo
from activities.service import ApplyServiceChange, ServiceActivities, ServiceView
from activities.service_carrier import FakeServiceCarrier
from app.settings import Settings
from domain.service_rules import (
    ArrearsStage,
    Change,
    ChangeKind,
    RealnameStage,
    ServiceState,
)
from tests.factories_inventory import add_fresh_numbers, in_minutes, new_registration_id

NOW = datetime(2027, 3, 1, 2, 0, tzinfo=UTC)


async def active_number(pool: asyncpg.Pool) -> tuple[str, str]:
    reg = new_registration_id()
    (number,) = await add_fresh_numbers(pool, 1, prefix="4001")
    async with pool.acquire() as conn, conn.transaction():
        await inventory.hold_number(conn, number, reg, in_minutes(30))
        await inventory.allocate(conn, number, reg)
        await inventory.activate(conn, number, reg)
    return reg, number


def command(reg: str, number: str, change: Change) -> ApplyServiceChange:
    return ApplyServiceChange(
        application_id=reg,
        number=number,
        carrier="china_mobile",
        correlation_id="corr-1",
        event_id=str(uuid.uuid4()),
        change=change,
        view=ServiceView(
            service_state=change.state_after,
            arrears_stage=ArrearsStage.NONE,
            realname_stage=RealnameStage.CURRENT,
            realname_due_at=None,
            balance_fen=change.balance_fen,
            next_deadline=None,
            overdue=False,
        ),
    )


def suspension(seq: int = 1) -> Change:
    return Change(
        seq=seq,
        kind=ChangeKind.OPERATOR_SUSPENDED,
        at=NOW,
        state_before=ServiceState.ACTIVE,
        state_after=ServiceState.SUSPENDED,
        balance_fen=0,
        actor_id="op_wang",
        actor_role="operator",
        reason="complaints",
    )


async def stored(pool: asyncpg.Pool, reg: str) -> list[asyncpg.Record]:
    return list(await pool.fetch("SELECT * FROM domain_event WHERE stream_id = $1 ORDER BY version", reg))


async def test_a_change_is_applied_once_however_often_it_runs(pool: asyncpg.Pool, settings: Settings) -> None:
    reg, number = await active_number(pool)
    acts = ServiceActivities(pool, settings, FakeServiceCarrier(pool))
    cmd = command(reg, number, suspension())
    env = ActivityEnvironment()
    first = await env.run(acts.apply_change, cmd)
    again = await env.run(acts.apply_change, cmd)
    racing = await asyncio.gather(*(env.run(acts.apply_change, cmd) for _ in range(3)))
    assert first.version == 1 and not first.duplicate
    assert again.duplicate and all(r.duplicate for r in racing)
    events = await stored(pool, reg)
    assert [(e["event_type"], e["actor"], e["reason"]) for e in events] == [
        ("OperatorSuspended", "op_wang", "complaints")
    ]
    assert events[0]["payload"]["carrier_action"] == "suspend"
    async with pool.acquire() as conn:
        assert await fake_carrier_service.applied_actions(conn, number) == ["suspend"]
        record = await inventory.get_number(conn, number)
    assert record is not None and record.status == "suspended"


async def test_another_change_stored_under_the_id_is_never_reported_as_this_ones(
    pool: asyncpg.Pool, settings: Settings
) -> None:
    """A replay that decided a different change at the same sequence number must
    not be answered from the stored one: it fails, to be retried and seen."""
    reg, number = await active_number(pool)
    acts = ServiceActivities(pool, settings, FakeServiceCarrier(pool))
    env = ActivityEnvironment()
    first = command(reg, number, suspension())
    await env.run(acts.apply_change, first)
    resumption = suspension().model_copy(
        update={
            "kind": ChangeKind.OPERATOR_RESUMED,
            "state_before": ServiceState.SUSPENDED,
            "state_after": ServiceState.ACTIVE,
        }
    )
    with pytest.raises(ApplicationError) as err:
        again = command(reg, number, resumption).model_copy(update={"event_id": first.event_id})
        await env.run(acts.apply_change, again)
    assert err.value.type == "EventMismatch" and not err.value.non_retryable
    assert [e["event_type"] for e in await stored(pool, reg)] == ["OperatorSuspended"]


async def test_a_number_not_held_is_never_touched(pool: asyncpg.Pool, settings: Settings) -> None:
    reg, number = await active_number(pool)
    other_reg, _ = await active_number(pool)
    acts = ServiceActivities(pool, settings, FakeServiceCarrier(pool))
    # Not this registration's number: neither the carrier nor the inventory is
    # touched, nothing is appended, and the activity fails to be retried (only a
    # data repair fixes this; retrying keeps it visible in Temporal).
    with pytest.raises(ApplicationError) as err:
        await ActivityEnvironment().run(acts.apply_change, command(other_reg, number, suspension()))
    assert err.value.type == "InventoryError" and not err.value.non_retryable
    assert await stored(pool, other_reg) == []
    async with pool.acquire() as conn:
        assert await fake_carrier_service.calls_by_outcome(conn, number) == {}
        record = await inventory.get_number(conn, number)
    assert record is not None and (record.status, record.registration_id) == ("active", reg)


async def test_a_failed_transaction_leaves_nothing_and_the_retry_repeats_the_carrier_call_harmlessly(
    pool: asyncpg.Pool, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    reg, number = await active_number(pool)
    acts = ServiceActivities(pool, settings, FakeServiceCarrier(pool))
    cmd = command(reg, number, suspension())
    real_append = service_repo.append_event
    failures = [asyncpg.exceptions.SerializationError("injected")]

    async def flaky_append(conn: asyncpg.Connection, **kwargs: object) -> int | None:
        version = await real_append(conn, **kwargs)  # type: ignore[arg-type]
        if failures:
            raise failures.pop()
        return version

    monkeypatch.setattr(service_repo, "append_event", flaky_append)
    with pytest.raises(asyncpg.exceptions.SerializationError):
        await ActivityEnvironment().run(acts.apply_change, cmd)
    # All or nothing: the inventory change before the append was rolled back too.
    assert await stored(pool, reg) == []
    async with pool.acquire() as conn:
        record = await inventory.get_number(conn, number)
    assert record is not None and record.status == "active"

    result = await ActivityEnvironment().run(acts.apply_change, cmd)
    assert result.version == 1
    async with pool.acquire() as conn:
        assert await fake_carrier_service.calls_by_outcome(conn, number) == {
            "applied": 1,
            "already_applied": 1,
        }
        assert await fake_carrier_service.applied_actions(conn, number) == ["suspend"]
        record = await inventory.get_number(conn, number)
    assert record is not None and record.status == "suspended"
    assert len(await stored(pool, reg)) == 1


async def test_carrier_unavailable_is_retryable_and_refusal_is_recorded(
    pool: asyncpg.Pool, settings: Settings
) -> None:
    reg, number = await active_number(pool)
    acts = ServiceActivities(pool, settings, FakeServiceCarrier(pool))
    async with pool.acquire() as conn:
        await fake_carrier.inject_fault(conn, number, fail_times=1)
    cmd = command(reg, number, suspension())
    with pytest.raises(ApplicationError) as err:
        await ActivityEnvironment().run(acts.apply_change, cmd)
    assert err.value.type == "CarrierUnavailable" and not err.value.non_retryable
    assert await stored(pool, reg) == []
    async with pool.acquire() as conn:
        await fake_carrier.inject_fault(conn, number, reject=True)
    result = await ActivityEnvironment().run(acts.apply_change, cmd)
    assert result.carrier_refused is not None
    (event,) = await stored(pool, reg)
    assert "number_refused" in event["payload"]["carrier_refused"]


async def test_release_after_quarantine_is_per_number_and_only_when_due(pool: asyncpg.Pool) -> None:
    reg, number = await active_number(pool)
    until = NOW + timedelta(days=90)
    async with pool.acquire() as conn:
        await inventory.quarantine(conn, number, reg, until)
        assert not await service_repo.release_quarantined(conn, number, reg, until - timedelta(seconds=1))
        assert not await service_repo.release_quarantined(conn, number, "someone-else", until)
        assert await service_repo.release_quarantined(conn, number, reg, until)
        assert not await service_repo.release_quarantined(conn, number, reg, until)  # a retry
        record = await inventory.get_number(conn, number)
    assert record is not None and (record.status, record.registration_id) == ("available", None)

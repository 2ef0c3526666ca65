"""Deadlines counted by the activities on the calendar stored in PostgreSQL.

Includes the closing demonstration of issue 14: a registration created on
2026-12-28 at 10:00 China time, while 2027 has no official schedule, gets a
provisional deadline of 2027-01-04 (1 January counted as a working day); once
the sample 2027 schedule (docs/examples/calendar-2027-sample.yaml: 元旦 01-01..01-03)
is loaded, its recompute records 2027-01-05.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from activities.calendar import CalendarStore
from activities.carrier import FakeCarrier
from activities.registration import (
    ApplyCommand,
    DeadlineAsk,
    RecomputeCommand,
    RegistrationActivities,
    TransitionCommand,
)
from activities.repositories import calendar as repo
from api.ids import new_id
from app.settings import Settings
from domain.calendar import CHINA_TZ
from domain.holiday_schedule import days_of
from domain.timeline import (
    ActorRole,
    Event,
    EventType,
    RegistrationState,
    WaitingFor,
    WorkingDayDeadline,
    apply_event,
)
from tests.calendar_support import load, sample_2027, seed_schedules, without_official_year
from tests.workflows import support as s

REVIEW = DeadlineAsk(kind=WorkingDayDeadline.REVIEW_DUE, working_days=5)
RESUBMIT = DeadlineAsk(kind=WorkingDayDeadline.RESUBMIT_BY, working_days=5)


def cn(y: int, m: int, d: int, hh: int = 10) -> datetime:
    return datetime(y, m, d, hh, tzinfo=CHINA_TZ)


@pytest.fixture
def acts(pool: asyncpg.Pool, settings: Settings) -> RegistrationActivities:
    return RegistrationActivities(pool, settings, FakeCarrier(pool))


@pytest.fixture
async def without_2027(pool: asyncpg.Pool) -> AsyncIterator[None]:
    async with without_official_year(pool, 2027):
        yield


def draft(
    stream: str, version: int, kind: EventType, at: datetime, payload: dict[str, Any] | None = None
) -> Event:
    return Event(
        stream_id=stream,
        version=version,
        event_id=str(uuid.uuid4()),
        event_type=kind,
        actor="system",
        actor_role=ActorRole.SYSTEM,
        correlation_id="corr-calendar",
        occurred_at=at.astimezone(UTC),
        payload=payload or {},
    )


async def applied(acts: RegistrationActivities, pool: asyncpg.Pool, at: datetime) -> RegistrationState:
    stream = new_id("app")
    result = await acts.apply(
        ApplyCommand(
            workflow_id=f"registration-{stream}",
            event=draft(stream, 1, EventType.APPLICATION_SUBMITTED, at),
            form=s.application(await s.fresh_number(pool)),
            hold_expires_at=at + timedelta(days=30),
            deadline=REVIEW,
        )
    )
    assert result.event is not None
    return apply_event(None, result.event)


async def step(
    acts: RegistrationActivities, state: RegistrationState, kind: EventType, at: datetime, **kw: Any
) -> RegistrationState:
    payload = kw.pop("payload", None)
    result = await acts.record(
        TransitionCommand(
            workflow_id=f"registration-{state.application_id}",
            state=state,
            event=draft(state.application_id, state.version + 1, kind, at, payload),
            **kw,
        )
    )
    assert result.event is not None
    return apply_event(state, result.event)


async def changes_requested(
    acts: RegistrationActivities, state: RegistrationState, at: datetime
) -> RegistrationState:
    """An operator asks for changes at ``at``: 5 working days to resubmit."""
    payload = {"fields": ["contact_address"], "documents": []}
    return await step(acts, state, EventType.CHANGES_REQUESTED, at, payload=payload, deadline=RESUBMIT)


async def recompute(
    acts: RegistrationActivities, state: RegistrationState, at: datetime, *, await_calendar: bool = False
) -> tuple[RegistrationState, Event | None]:
    result = await acts.recompute_deadline(
        RecomputeCommand(
            workflow_id=f"registration-{state.application_id}",
            state=state,
            event=draft(state.application_id, state.version + 1, EventType.DEADLINE_RECOMPUTED, at),
            await_calendar=await_calendar,
        )
    )
    if result.event is None:
        return state, None
    return apply_event(state, result.event), result.event


async def test_the_database_holds_the_seed_files(pool: asyncpg.Pool) -> None:
    """The migration's rows are the files' days (app/holiday_seeds.py wrote both)."""
    async with pool.acquire() as conn:
        for seeded in seed_schedules():
            assert seeded.year is not None
            assert await repo.year_days(conn, seeded.year) == days_of(seeded), seeded.year
            record = await repo.year_record(conn, seeded.year)
            assert record is not None and record["source"] == seeded.source


async def test_issue_14_closing_demonstration(acts, pool, without_2027) -> None:
    """Created 2026-12-28 10:00 China time; 5 working days of review and, the
    same day, changes requested with 5 working days to resubmit."""
    created = cn(2026, 12, 28)
    state = await applied(acts, pool, created)
    provisional = cn(2027, 1, 4)
    assert (state.review_due, state.deadline_provisional) == (provisional, True)
    state = await changes_requested(acts, state, created)
    assert state.change_request is not None
    assert (state.change_request.resubmit_by, state.deadline_provisional) == (provisional, True)
    [*_, asked] = await s.stream(pool, state.application_id)
    assert asked.payload["resubmit_by"] == "2027-01-04T02:00:00+00:00"
    assert asked.payload["provisional_years"] == [2027]
    row = await s.read_model(pool, state.application_id)
    assert row is not None and row["deadline_provisional"] is True
    assert row["deadline_counted_from"] == created

    async with pool.acquire() as conn:
        assert await repo.count_to_recompute(conn, 2027) >= 1
        loaded = await load(pool, sample_2027())
        found = await repo.registrations_to_recompute(conn, 2027, "", 100_000)
    assert state.application_id in found

    state, event = await recompute(acts, state, cn(2026, 12, 29))
    assert event is not None and event.event_type is EventType.DEADLINE_RECOMPUTED
    assert event.payload["old_at"] == "2027-01-04T02:00:00+00:00"
    assert event.payload["new_at"] == "2027-01-05T02:00:00+00:00"
    assert event.payload["deadline_provisional"] is False
    assert event.payload["calendar_version"] == loaded.version
    assert event.reason == (
        f"resubmit_by counted again on calendar version {loaded.version}: "
        "2027-01-04 10:00 -> 2027-01-05 10:00 China time"
    )
    assert state.change_request is not None and state.change_request.resubmit_by == cn(2027, 1, 5)
    assert not state.deadline_provisional
    row = await s.read_model(pool, state.application_id)
    assert row is not None
    assert (row["next_deadline"], row["deadline_provisional"]) == (cn(2027, 1, 5), False)
    # Counted again on the same calendar: nothing moves, nothing is recorded.
    assert await recompute(acts, state, cn(2026, 12, 29)) == (state, None)


async def test_a_closing_deadline_never_moves_earlier_than_the_one_given(acts, pool, without_2027) -> None:
    """Friday 2027-01-29: Monday to Friday, 5 working days end Friday 02-05. The
    sample makes Sunday 01-31 a working day, so they end Thursday 02-04: the
    review target moves there, the resubmission window stays on 02-05."""
    at = cn(2027, 1, 29)
    review = await applied(acts, pool, at)
    resubmit = await changes_requested(acts, await applied(acts, pool, at), at)
    assert review.next_deadline == resubmit.next_deadline == cn(2027, 2, 5)
    await load(pool, sample_2027())
    review, moved = await recompute(acts, review, at)
    assert moved is not None and review.next_deadline == cn(2027, 2, 4)
    resubmit, kept = await recompute(acts, resubmit, at)
    assert kept is not None and resubmit.next_deadline == cn(2027, 2, 5)
    assert kept.payload["counted_at"] == cn(2027, 2, 4).astimezone(UTC).isoformat()
    assert not resubmit.deadline_provisional


async def test_a_provisional_window_that_falls_due_waits_for_the_calendar(acts, pool, without_2027) -> None:
    at = cn(2026, 12, 28)
    state = await changes_requested(acts, await applied(acts, pool, at), at)
    due = cn(2027, 1, 4)
    state, waiting = await recompute(acts, state, due, await_calendar=True)
    assert waiting is not None and waiting.event_type is EventType.DEADLINE_AWAITING_CALENDAR
    assert waiting.payload["provisional_years"] == [2027]
    assert "stays open" in (waiting.reason or "")
    assert state.waiting_for is WaitingFor.OFFICIAL_CALENDAR and state.is_open
    row = await s.read_model(pool, state.application_id)
    assert row is not None and (row["waiting_for"], row["stage"]) == ("official_calendar", "audit")
    # Still no schedule: waiting already, nothing more is recorded.
    assert await recompute(acts, state, due + timedelta(days=1), await_calendar=True) == (state, None)
    await load(pool, sample_2027())
    state, event = await recompute(acts, state, due + timedelta(days=1))
    assert event is not None and state.waiting_for is WaitingFor.RESUBMISSION
    assert state.next_deadline == cn(2027, 1, 5)


async def test_a_review_marked_overdue_provisionally_is_not_overdue_once_counted_later(
    acts, pool, without_2027
) -> None:
    at = cn(2026, 12, 28)
    state = await step(acts, await applied(acts, pool, at), EventType.REVIEW_OVERDUE, cn(2027, 1, 4))
    assert state.overdue
    await load(pool, sample_2027())
    state, event = await recompute(acts, state, cn(2027, 1, 4, 12))
    assert event is not None
    assert (state.review_due, state.overdue) == (cn(2027, 1, 5), False)


async def test_a_load_finds_the_deadlines_counted_across_its_year(acts, pool) -> None:
    """Not provisional, but counted across 2026: a reload of 2026 may move it."""
    state = await applied(acts, pool, cn(2026, 9, 30))
    assert state.review_due == cn(2026, 10, 13) and not state.deadline_provisional
    async with pool.acquire() as conn:
        assert state.application_id in await repo.registrations_to_recompute(conn, 2026, "", 100_000)
        assert state.application_id not in await repo.registrations_to_recompute(conn, 2025, "", 100_000)


async def test_the_store_reads_the_calendar_once_per_version(pool, without_2027, caplog) -> None:
    store = CalendarStore()
    async with pool.acquire() as conn:
        first = await store.current(conn)
        assert await store.current(conn) is first
        with caplog.at_level(logging.WARNING, logger="activities.calendar"):
            store.deadline(first, cn(2026, 12, 28), 5)
            store.deadline(first, cn(2026, 12, 30), 5)
        warnings = [r for r in caplog.records if "no official holiday schedule for 2027" in r.getMessage()]
        assert len(warnings) == 1
        await load(pool, sample_2027())
        second = await store.current(conn)
        assert second.version > first.version and second.is_official(2027)

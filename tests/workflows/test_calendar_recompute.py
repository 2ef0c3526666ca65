"""A provisional deadline recomputed when the year's schedule is loaded, on the
time-skipping server: the recompute workflow sends the Update, the registration
records DeadlineRecomputed and its running timer moves; a provisional window
that falls due keeps the application open; and a history recorded on one
calendar replays after the calendar changed, without counting a working day.

The server is this module's own, started at today's date, and the registrations
start on 28 December of the year before one that has no official schedule for
the test's length (2027, run before 28 December 2026): five working days from
there cross 1 January, a holiday in the sample schedules loaded here.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from temporalio.client import WorkflowHistory
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer, Worker

from api.services import calendar as calendar_service
from app.settings import Settings
from app.temporal import data_converter
from app.worker import workflow_runner
from domain.calendar import CHINA_TZ, WorkingCalendar, add_working_days, china_date
from domain.holiday_schedule import HolidayRange, YearSchedule
from domain.timeline import EventType, Status, WaitingFor
from tests.calendar_support import (
    calendar_from,
    load,
    sample_2027,
    seed_schedules,
    stand_in,
    stand_ins_until,
    without_official_year,
)
from tests.conftest import start_time_skipping
from tests.workflows import support as s
from workflows.calendar_contracts import (
    CALENDAR_RECOMPUTE_WORKFLOW,
    QUERY_RECOMPUTE_PROGRESS,
    RecomputeInput,
    RecomputeProgress,
    recompute_workflow_id,
)
from workflows.registration import RegistrationWorkflow
from workflows.service import ServiceWorkflow


@pytest.fixture(scope="module")
async def own_env(settings: Settings) -> AsyncIterator[WorkflowEnvironment]:
    env = await start_time_skipping(settings)
    try:
        yield env
    finally:
        await env.shutdown()


def _worker(env: WorkflowEnvironment, task_queue: str, pool: asyncpg.Pool, settings: Settings) -> Worker:
    return s.registration_worker(env.client, task_queue, pool, settings, calendar=True)


class Scene:
    """A year ``year`` with no official schedule, and 28 December before it."""

    def __init__(self, env: WorkflowEnvironment, year: int, start: datetime) -> None:
        self.env = env
        self.year = year
        self.start = start
        before = stand_in(year - 1) if year - 1 > 2026 else None
        known = [*seed_schedules(), *([before] if before else [])]
        self.schedule = sample_2027() if year == 2027 else new_year_sample(year)
        self.provisional = calendar_from(*known)
        self.official = calendar_from(*known, self.schedule)

    def dues(self, status: Any) -> tuple[datetime, datetime]:
        """5 working days from when changes were requested: without the year's
        schedule (Monday to Friday), and with it."""
        requested_at = status.change_request.requested_at
        return tuple(  # type: ignore[return-value]
            add_working_days(requested_at, 5, c).astimezone(UTC) for c in (self.provisional, self.official)
        )


def new_year_sample(year: int) -> YearSchedule:
    return YearSchedule(
        year=year,
        source="tests: sample, New Year's Day 01-01..01-03",
        holidays=[
            HolidayRange(name="元旦", start=datetime(year, 1, 1).date(), end=datetime(year, 1, 3).date())
        ],
    )


@pytest.fixture
async def scene(own_env: WorkflowEnvironment, pool: asyncpg.Pool) -> AsyncIterator[Scene]:
    now = (await own_env.get_current_time()).astimezone(CHINA_TZ)
    year = now.year + 1 if now < datetime(now.year, 12, 28, 10, tzinfo=CHINA_TZ) else now.year + 2
    start = datetime(year - 1, 12, 28, 10, tzinfo=CHINA_TZ)
    await stand_ins_until(pool, start)
    async with without_official_year(pool, year):
        await own_env.sleep(start - now)
        yield Scene(own_env, year, start)


async def _changes_requested(client: Any, task_queue: str, pool: asyncpg.Pool) -> s.Handle:
    handle = await s.start(client, task_queue, s.application(await s.fresh_number(pool)))
    await s.submitted(handle)
    return handle


async def _recompute(scene: Scene, task_queue: str, pool: asyncpg.Pool, **inputs: Any) -> RecomputeProgress:
    """Load the year and run its recompute: as the API starts it, or with
    ``inputs`` (page size, registrations per run) started here."""
    loaded = await load(pool, scene.schedule)
    if inputs:
        handle = await scene.env.client.start_workflow(
            CALENDAR_RECOMPUTE_WORKFLOW,
            RecomputeInput(year=scene.year, calendar_version=loaded.version, **inputs),
            id=recompute_workflow_id(scene.year, loaded.version),
            task_queue=task_queue,
            result_type=RecomputeProgress,
        )
    else:
        started = await calendar_service.start_recompute(
            scene.env.client, task_queue, scene.year, loaded.version
        )
        assert started.started
        handle = scene.env.client.get_workflow_handle(started.workflow_id, result_type=RecomputeProgress)
    # No skipping while it runs: the registrations' timers must not fire meanwhile.
    with scene.env.auto_time_skipping_disabled():
        done: RecomputeProgress = await handle.result()
        queried = await handle.query(QUERY_RECOMPUTE_PROGRESS, result_type=RecomputeProgress)
    assert queried == done
    return done


async def test_a_provisional_deadline_is_recomputed_and_its_timer_moves(
    scene: Scene, pool: asyncpg.Pool, settings: Settings
) -> None:
    env = scene.env
    task_queue = f"calendar-{uuid.uuid4()}"
    async with _worker(env, task_queue, pool, settings):
        handles = [await _changes_requested(env.client, task_queue, pool) for _ in range(3)]
        for handle in reversed(handles):
            status = await s.request_changes(handle)
            provisional, official = scene.dues(status)
            assert official > provisional  # 1 January is a working day only provisionally
            assert (status.next_deadline, status.deadline_provisional) == (provisional, True)
        row = await s.read_model(pool, s.app_id(handles[0]))
        assert row is not None and row["deadline_provisional"] is True

        # A page of one and two per run: the progress carries over as the
        # recompute continues as new.
        progress = await _recompute(scene, task_queue, pool, page_size=1, per_run=2)
        assert (progress.finished, progress.failed) == (True, 0)
        assert progress.found >= 3 and progress.recomputed >= 3
        assert progress.done == progress.found
        recompute_id = recompute_workflow_id(scene.year, progress.calendar_version)
        last_run = (await env.client.get_workflow_handle(recompute_id).fetch_history()).events[0]
        started = last_run.workflow_execution_started_event_attributes
        assert started.continued_execution_run_id, "the recompute never continued as new"

        handle = handles[0]
        status = await s.query_status(handle)
        assert (status.next_deadline, status.deadline_provisional) == (official, False)
        recorded = (await s.stream(pool, s.app_id(handle)))[-1]
        assert recorded.event_type is EventType.DEADLINE_RECOMPUTED
        assert (recorded.payload["old_at"], recorded.payload["new_at"]) == (
            provisional.isoformat(),
            official.isoformat(),
        )
        assert recorded.payload["calendar_version"] == progress.calendar_version
        assert recorded.correlation_id == f"calendar-{scene.year}-v{progress.calendar_version}"

        # The timer moved: past the provisional instant nothing happens ...
        await env.sleep(provisional - await env.get_current_time() + timedelta(hours=1))
        assert (await s.query_status(handle)).status is Status.CHANGES_REQUESTED
        # ... and the window closes at the recomputed one.
        result = await s.result(handle)
        assert result.status.status is Status.ABANDONED
        abandoned = (await s.stream(pool, s.app_id(handle)))[-1]
        assert abandoned.event_type is EventType.APPLICATION_ABANDONED
        assert abs(abandoned.occurred_at - official) < timedelta(minutes=1)
        history = await env.client.get_workflow_handle(handle.id).fetch_history()

    await _replays_on_another_calendar(scene, pool, settings, history)


async def _replays_on_another_calendar(
    scene: Scene, pool: asyncpg.Pool, settings: Settings, history: WorkflowHistory
) -> None:
    """Issue 14, determinism: the history replays unchanged after the calendar
    tables changed (the year loaded with a week of holidays instead), and the
    replay counts no working day at all: every deadline is the one recorded."""
    await load(
        pool,
        YearSchedule(
            year=scene.year,
            source="tests: another schedule",
            holidays=[
                HolidayRange(
                    name="元旦",
                    start=datetime(scene.year, 1, 1).date(),
                    end=datetime(scene.year, 1, 7).date(),
                )
            ],
        ),
    )
    counted: list[Any] = []
    original = WorkingCalendar.is_working_day

    def spy(self: WorkingCalendar, day: Any) -> bool:
        counted.append(day)
        return original(self, day)

    replayer = Replayer(
        workflows=[RegistrationWorkflow, ServiceWorkflow],
        data_converter=data_converter(settings.encryption_keys),
        workflow_runner=workflow_runner(),
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(WorkingCalendar, "is_working_day", spy)
        replayed = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert replayed.replay_failure is None, replayed.replay_failure
    assert counted == []


async def test_a_provisional_window_that_falls_due_keeps_the_application_open(
    scene: Scene, pool: asyncpg.Pool, settings: Settings
) -> None:
    """The applicant must not lose the application for a day that turns out to be
    a holiday: past the provisional deadline the registration waits, visibly, for
    the official schedule, and after it is loaded a resubmission is accepted."""
    env = scene.env
    task_queue = f"calendar-{uuid.uuid4()}"
    async with _worker(env, task_queue, pool, settings):
        handle = await _changes_requested(env.client, task_queue, pool)
        provisional, official = scene.dues(await s.request_changes(handle))
        await env.sleep(provisional - await env.get_current_time() + timedelta(hours=1))
        status = await s.query_status(handle)
        assert (status.status, status.waiting_for) == (Status.CHANGES_REQUESTED, WaitingFor.OFFICIAL_CALENDAR)
        assert status.deadline_provisional and status.next_deadline == provisional
        recorded = (await s.stream(pool, s.app_id(handle)))[-1]
        assert recorded.event_type is EventType.DEADLINE_AWAITING_CALENDAR
        assert recorded.payload["provisional_years"] == [scene.year]
        row = await s.read_model(pool, s.app_id(handle))
        assert row is not None and row["waiting_for"] == "official_calendar"

        await _recompute(scene, task_queue, pool)
        status = await s.query_status(handle)
        assert (status.waiting_for, status.next_deadline, status.deadline_provisional) == (
            WaitingFor.RESUBMISSION,
            official,
            False,
        )
        assert china_date(await env.get_current_time()) == china_date(provisional)
        status = await s.resubmit(handle, s.corrected(status.number))
        assert status.status is Status.IN_REVIEW
        await s.withdraw(handle)


async def test_a_waiting_registration_looks_at_the_calendar_itself(
    scene: Scene, pool: asyncpg.Pool, settings: Settings
) -> None:
    """Should no recompute reach it (loaded while the workflow service was down),
    a registration waiting for the calendar counts again every day: once the year
    is loaded, its window (already past on the official count) closes it."""
    env = scene.env
    task_queue = f"calendar-{uuid.uuid4()}"
    async with _worker(env, task_queue, pool, settings):
        handle = await _changes_requested(env.client, task_queue, pool)
        provisional, official = scene.dues(await s.request_changes(handle))
        await env.sleep(provisional - await env.get_current_time() + timedelta(hours=1))
        assert (await s.query_status(handle)).waiting_for is WaitingFor.OFFICIAL_CALENDAR
        await load(pool, scene.schedule)  # and no recompute workflow
        result = await s.result(handle)
        assert result.status.status is Status.ABANDONED
        *_, recomputed, abandoned = await s.stream(pool, s.app_id(handle))
        assert recomputed.event_type is EventType.DEADLINE_RECOMPUTED
        assert recomputed.payload["new_at"] == official.isoformat()
        assert recomputed.payload["deadline_provisional"] is False
        # The daily look came after the official deadline had passed: it closes at once.
        assert abandoned.event_type is EventType.APPLICATION_ABANDONED
        assert official < abandoned.occurred_at <= official + timedelta(days=1, hours=1)

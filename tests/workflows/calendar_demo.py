"""The closing demonstration of the holiday calendar (issue 14), on the real stack:

    .venv/bin/python -m tests.workflows.calendar_demo

A throwaway embedded PostgreSQL (or TEST_DATABASE_URL, if 2027 is not loaded
there), migrated: the seeds hold 2004 to 2026, so 2027 has no official
schedule. The time-skipping Temporal
server, moved to Monday 2026-12-28 10:00 China time, and a worker like the
production one (the registration workflow, the calendar recompute and their
activities). One registration is created then and an operator asks for changes
at once: 5 working days to resubmit, counted across 1 January 2027 on the
Monday-to-Friday rule, so provisional. Then the SAMPLE 2027 schedule
(docs/examples/calendar-2027-sample.yaml: not the official notice, which was
not known when it was written) is loaded the way ``PUT /v1/calendar/2027`` and
``python -m app calendar load`` load it, which starts the recompute; the
registration's deadline moves to the official count and its timer with it: on
the provisional date the application is still open, and a resubmission the day
after is accepted.

Every line it prints comes from the system (the workflow's status, the events
recorded, the load's answer, the recompute's progress, the worker's log).
tests/workflows/test_calendar_demo.py runs the same ``demo`` in the suite.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

import asyncpg
from temporalio.testing import WorkflowEnvironment

from activities.calendar import CalendarStore
from api.schemas.calendar import CalendarLoad
from api.services import calendar as calendar_service
from app.db import create_pool
from app.settings import Settings
from domain.calendar import CHINA_TZ
from domain.timeline import EventType, Status
from tests.calendar_support import SAMPLE_2027
from tests.conftest import start_time_skipping, suite_settings
from tests.workflows import support as s
from tests.workflows.scripts import on_throwaway_database
from workflows.calendar_contracts import RecomputeProgress

YEAR = 2027
CREATED_AT = datetime(2026, 12, 28, 10, 0, tzinfo=CHINA_TZ)

Say = Callable[[str], None]


def china(moment: datetime | None) -> str:
    return "-" if moment is None else f"{moment.astimezone(CHINA_TZ):%Y-%m-%d %H:%M (%a)} China time"


class _Warnings(logging.Handler):
    """The worker's warnings about missing years, as it logs them."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


async def demo(env: WorkflowEnvironment, pool: asyncpg.Pool, settings: Settings, say: Say = print) -> None:
    """Run the demonstration; 2027 must have no official schedule in ``pool``'s
    database, and ``env``'s clock must not be past ``CREATED_AT``."""
    now = await env.get_current_time()
    if now > CREATED_AT:
        raise SystemExit(f"the time-skipping server is at {china(now)}, past {china(CREATED_AT)}")
    async with pool.acquire() as conn:
        status = await calendar_service.status(conn, CalendarStore(), today=CREATED_AT.date())
    assert YEAR in [m.year for m in status.missing], status
    years = status.official_years
    say(f"calendar version {status.version}: official schedules {years[0]}-{years[-1]}; {status.detail}")

    warnings = _Warnings()
    worker_log = logging.getLogger("activities.calendar")
    level = worker_log.level
    worker_log.setLevel(logging.WARNING)
    worker_log.addHandler(warnings)
    task_queue = "calendar-demo"
    try:
        async with s.registration_worker(env.client, task_queue, pool, settings, calendar=True):
            await env.sleep(CREATED_AT - now)
            handle = await s.start(env.client, task_queue, s.application(await s.fresh_number(pool)))
            submitted = await s.submitted(handle)
            app_id = s.app_id(handle)
            created = (await s.stream(pool, app_id))[0]
            say(f"\nregistration {app_id} created {china(created.occurred_at)}")
            say(
                f"  review target (5 working days):   {china(submitted.next_deadline)}, "
                f"deadline_provisional={submitted.deadline_provisional}"
            )
            asked = await s.request_changes(handle)
            assert asked.change_request is not None and asked.deadline_provisional
            provisional = asked.change_request.resubmit_by
            say(
                f"  changes requested {china(asked.change_request.requested_at)}: resubmit by "
                f"{china(provisional)}, deadline_provisional={asked.deadline_provisional}"
            )
            recorded = (await s.stream(pool, app_id))[-1]
            say(
                f"  event {recorded.event_type.value}: resubmit_by {recorded.payload['resubmit_by']}, "
                f"provisional_years {recorded.payload['provisional_years']}, "
                f"calendar_version {recorded.payload['calendar_version']}"
            )
            for message in warnings.messages:
                say(f"  worker warning: {message}")

            loaded_year = await _load_sample(env, pool, task_queue, say)
            with env.auto_time_skipping_disabled():
                progress = await env.client.get_workflow_handle(
                    loaded_year.recompute.workflow_id, result_type=RecomputeProgress
                ).result()
            say(
                f"recompute {loaded_year.recompute.workflow_id}: found {progress.found}, "
                f"recomputed {progress.recomputed}, unchanged {progress.unchanged}, failed {progress.failed}"
            )
            moved = (await s.stream(pool, app_id))[-1]
            assert moved.event_type is EventType.DEADLINE_RECOMPUTED, moved
            say(f"  event {moved.event_type.value}: {moved.reason}")
            say(
                f"    old_at {moved.payload['old_at']}, new_at {moved.payload['new_at']}, "
                f"calendar_version {moved.payload['calendar_version']}, "
                f"deadline_provisional {moved.payload['deadline_provisional']}"
            )
            after = await s.query_status(handle)
            assert after.change_request is not None
            official = after.change_request.resubmit_by
            say(
                f"  resubmit by {china(official)}, deadline_provisional={after.deadline_provisional} "
                f"(was {china(provisional)})"
            )

            await env.sleep(provisional + timedelta(hours=1) - await env.get_current_time())
            still = await s.query_status(handle)
            say(
                f"\nat {china(await env.get_current_time())}, past the provisional deadline: "
                f"status {still.status.value}, waiting for {still.waiting_for.value}"
            )
            # 09:00 on the day the official count gives: a day the provisional one had taken away.
            official_day = official.astimezone(CHINA_TZ).date()
            morning = datetime(official_day.year, official_day.month, official_day.day, 9, tzinfo=CHINA_TZ)
            await env.sleep(morning - await env.get_current_time())
            resubmitted = await s.resubmit(handle, s.corrected(still.number))
            assert resubmitted.status is Status.IN_REVIEW, resubmitted
            say(
                f"at {china(await env.get_current_time())} the applicant resubmits: status "
                f"{resubmitted.status.value}, new review target {china(resubmitted.next_deadline)}, "
                f"deadline_provisional={resubmitted.deadline_provisional}"
            )
            await s.withdraw(handle)
    finally:
        worker_log.removeHandler(warnings)
        worker_log.setLevel(level)


async def _load_sample(
    env: WorkflowEnvironment, pool: asyncpg.Pool, task_queue: str, say: Say
) -> CalendarLoad:
    """Load the sample as PUT /v1/calendar/2027 does: parse, check, store in one
    transaction, start the recompute, answer with what changed."""
    schedule = calendar_service.parse_schedule(SAMPLE_2027.read_bytes(), calendar_service.YAML_TYPES[0])
    async with pool.acquire() as conn:
        loaded = await calendar_service.load(
            conn, YEAR, schedule, loaded_by="calendar-demo", expected_version=0
        )
    started = await calendar_service.start_recompute(env.client, task_queue, YEAR, loaded.version)
    answer = calendar_service.load_answer(YEAR, loaded, started)
    holidays = [c.date for c in answer.added if c.after is not None and c.after.name == "元旦"]
    say(
        f"\nloaded {SAMPLE_2027.relative_to(SAMPLE_2027.parents[2])} (a SAMPLE, not the official notice) "
        f"as calendar version {answer.version}: {len(answer.added)} days added "
        f"(元旦 {holidays[0]}..{holidays[-1]}), deadlines to recompute: {answer.deadlines_to_recompute}"
    )
    return answer


async def _run(database_url: str) -> None:
    settings = suite_settings(database_url)
    pool = await create_pool(database_url, min_size=1, max_size=10)
    env = await start_time_skipping(settings)
    try:
        await demo(env, pool, settings)
    finally:
        await env.shutdown()
        await pool.close()


def main() -> None:
    # What it prints goes to stdout; only errors of the parts beneath to stderr.
    logging.basicConfig(level=logging.ERROR)
    for handler in logging.getLogger().handlers:
        handler.setLevel(logging.ERROR)
    on_throwaway_database("calendar-demo", _run)


if __name__ == "__main__":
    main()

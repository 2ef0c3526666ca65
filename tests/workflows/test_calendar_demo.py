"""The closing demonstration of the holiday calendar (tests/workflows/calendar_demo.py)
runs in the suite and says what it should: created on 2026-12-28, the
resubmission window is 2027-01-04 provisionally (1 January counted as a working
day) and 2027-01-05 once the sample 2027 schedule is loaded; on 2027-01-04 the
application is still open and a resubmission on the 5th is accepted.

The demonstration is of 28 December 2026 and the time-skipping server starts
at today's date: after that day it cannot be run (the recompute itself stays
tested for any date by test_calendar_recompute.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
from temporalio.testing import WorkflowEnvironment

from app.settings import Settings
from tests.calendar_support import without_official_year
from tests.conftest import start_time_skipping
from tests.workflows.calendar_demo import CREATED_AT, YEAR, demo


@pytest.fixture
async def demo_env(settings: Settings) -> AsyncIterator[WorkflowEnvironment]:
    env = await start_time_skipping(settings)
    try:
        if await env.get_current_time() > CREATED_AT:
            pytest.skip("the demonstration is of 2026-12-28, which has passed")
        yield env
    finally:
        await env.shutdown()


async def test_the_closing_demonstration(
    demo_env: WorkflowEnvironment, pool: asyncpg.Pool, settings: Settings
) -> None:
    lines: list[str] = []
    async with without_official_year(pool, YEAR):
        await demo(demo_env, pool, settings, lines.append)
    printed = "\n".join(lines)
    assert "No official holiday schedule for 2027" in printed
    assert "created 2026-12-28 10:00 (Mon) China time" in printed
    assert "resubmit by 2027-01-04 10:00 (Mon) China time, deadline_provisional=True" in printed
    assert "provisional_years [2027]" in printed
    assert "worker warning: no official holiday schedule for 2027" in printed
    assert "(a SAMPLE, not the official notice)" in printed and "元旦 2027-01-01..2027-01-03" in printed
    assert "event DeadlineRecomputed: resubmit_by counted again" in printed
    assert "old_at 2027-01-04T02:00" in printed and "new_at 2027-01-05T02:00" in printed
    assert (
        "resubmit by 2027-01-05 10:00 (Tue) China time, deadline_provisional=False "
        "(was 2027-01-04 10:00 (Mon) China time)"
    ) in printed
    assert "past the provisional deadline: status changes_requested, waiting for resubmission" in printed
    assert "at 2027-01-05 09:00 (Tue) China time the applicant resubmits: status in_review" in printed

"""Calendars for tests: the seed files as a calendar, the 2027 sample, stand-in
schedules for the years the suite's clocks reach, and taking a year out for
the length of a test.

The suite runs against real clocks (the dev server's is today's; the
time-skipping server's moves on by whatever earlier tests skipped), so its
deadlines fall in whichever years those clocks reach. Every such year after
the seeds gets a stand-in schedule (``stand_in``: New Year's Day alone) when
the test database is migrated, so that deadlines are not provisional merely
because the suite ran in December. A test about provisional deadlines takes its
year out with ``without_official_year`` and puts it back after.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import date, datetime
from pathlib import Path

import asyncpg
import yaml

from activities.repositories import calendar as repo
from app.holiday_seeds import read_seed, seed_files
from domain.calendar import CHINA_TZ, WorkingCalendar, china_date
from domain.holiday_schedule import (
    CalendarDay,
    HolidayRange,
    YearSchedule,
    calendar_of,
    days_of,
)

SAMPLE_2027 = Path(__file__).parents[1] / "docs" / "examples" / "calendar-2027-sample.yaml"
STAND_IN_SOURCE = "tests: stand-in schedule (New Year's Day only), not an official notice"
# How far past today the stand-ins go: the time-skipping server moves on by the
# months that service tests skip.
STAND_IN_YEARS_AHEAD = 5


def seed_schedules() -> list[YearSchedule]:
    return [read_seed(p) for p in seed_files()]


def sample_2027() -> YearSchedule:
    return YearSchedule.model_validate(yaml.safe_load(SAMPLE_2027.read_text(encoding="utf-8")))


def calendar_from(*schedules: YearSchedule, version: int = 1) -> WorkingCalendar:
    days: list[CalendarDay] = []
    years: list[int] = []
    for schedule in schedules:
        assert schedule.year is not None
        years.append(schedule.year)
        days += days_of(schedule).values()
    return calendar_of(days, years, version)


def seed_calendar() -> WorkingCalendar:
    """What the migration stores: every seed year."""
    return calendar_from(*seed_schedules())


def stand_in(year: int) -> YearSchedule:
    return YearSchedule(
        year=year,
        source=STAND_IN_SOURCE,
        holidays=[HolidayRange(name="元旦", start=date(year, 1, 1))],
    )


def china_today() -> date:
    return datetime.now(CHINA_TZ).date()


async def stand_ins_until(pool: asyncpg.Pool, now: datetime) -> None:
    """Stand-ins up to the year after ``now`` (a test server's clock, which earlier
    tests may have moved years ahead)."""
    async with pool.acquire() as conn:
        await load_stand_ins(conn, china_date(now).year + 1)


async def load_stand_ins(conn: asyncpg.Connection, until: int) -> None:
    """A stand-in for every year after the seeds, up to ``until``, that has no schedule."""
    official = set(await repo.official_years(conn))
    last_seed = max(s.year or 0 for s in seed_schedules())
    for year in range(last_seed + 1, until + 1):
        if year not in official:
            await repo.load_year(
                conn,
                year,
                days_of(stand_in(year)),
                source=STAND_IN_SOURCE,
                loaded_by="tests",
                expected_version=None,
            )


async def load(pool: asyncpg.Pool, schedule: YearSchedule, loaded_by: str = "tests") -> repo.LoadedYear:
    assert schedule.year is not None
    async with pool.acquire() as conn:
        return await repo.load_year(
            conn,
            schedule.year,
            days_of(schedule),
            source=schedule.source or "tests",
            loaded_by=loaded_by,
            expected_version=None,
        )


@contextlib.asynccontextmanager
async def without_official_year(pool: asyncpg.Pool, year: int) -> AsyncIterator[None]:
    """``year`` without an official schedule for the test's length, then as it was."""
    async with pool.acquire() as conn:
        record = await repo.year_record(conn, year)
        days = await repo.year_days(conn, year)
        await repo.forget_year(conn, year)
    try:
        yield
    finally:
        async with pool.acquire() as conn:
            await repo.forget_year(conn, year)
            if record is not None:
                await repo.load_year(
                    conn,
                    year,
                    days,
                    source=record["source"],
                    loaded_by=record["loaded_by"],
                    expected_version=None,
                )

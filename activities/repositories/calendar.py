"""SQL of the working-day calendar: ``calendar_revision``, ``calendar_year``,
``calendar_day`` and ``calendar_load`` (migrations/*_calendar.sql), and the
registrations whose working-day deadline a load may move."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime

import asyncpg

from domain.calendar import CHINA_TZ, WorkingCalendar
from domain.holiday_schedule import CalendarDay, DayKind, ScheduleDiff, calendar_of, diff


class VersionConflict(Exception):
    """The year's schedule is not at the version the loader expected."""

    def __init__(self, year: int, expected: int, current: int) -> None:
        super().__init__(f"the schedule of {year} is at version {current}, not {expected}")
        self.year = year
        self.expected = expected
        self.current = current


@dataclass(frozen=True, slots=True)
class LoadedYear:
    version: int
    previous_version: int | None
    changes: ScheduleDiff
    to_recompute: int


async def current_version(conn: asyncpg.Connection) -> int:
    version: int = await conn.fetchval("SELECT version FROM calendar_revision")
    return version


async def read_calendar(conn: asyncpg.Connection) -> WorkingCalendar:
    """The whole calendar at one version, read in one statement (one snapshot)."""
    row = await conn.fetchrow(
        """SELECT (SELECT version FROM calendar_revision) AS version,
                  (SELECT coalesce(array_agg(year), '{}') FROM calendar_year) AS years,
                  (SELECT coalesce(array_agg(day ORDER BY day), '{}') FROM calendar_day) AS days,
                  (SELECT coalesce(array_agg(kind ORDER BY day), '{}') FROM calendar_day) AS kinds"""
    )
    days = [CalendarDay(d, DayKind(k), "") for d, k in zip(row["days"], row["kinds"], strict=True)]
    return calendar_of(days, row["years"], row["version"])


async def official_years(conn: asyncpg.Connection) -> list[int]:
    return [r["year"] for r in await conn.fetch("SELECT year FROM calendar_year ORDER BY year")]


async def year_record(conn: asyncpg.Connection, year: int) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        "SELECT year, version, source, loaded_by, loaded_at FROM calendar_year WHERE year = $1", year
    )
    return row


async def year_days(conn: asyncpg.Connection, year: int) -> dict[date, CalendarDay]:
    rows = await conn.fetch("SELECT day, kind, name FROM calendar_day WHERE year = $1 ORDER BY day", year)
    return {r["day"]: CalendarDay(r["day"], DayKind(r["kind"]), r["name"]) for r in rows}


async def load_year(
    conn: asyncpg.Connection,
    year: int,
    days: Mapping[date, CalendarDay],
    *,
    source: str,
    loaded_by: str,
    expected_version: int | None,
) -> LoadedYear:
    """Replace the schedule of ``year`` by ``days`` in one transaction, as the
    calendar's next version. Loads wait for each other on the revision row, so
    a second load of the same year sees the first one's version: with
    ``expected_version`` (0 for a year never loaded) it is refused with
    VersionConflict, without it applied after the first."""
    async with conn.transaction():
        revision: int = await conn.fetchval("SELECT version FROM calendar_revision FOR UPDATE")
        previous: int | None = await conn.fetchval("SELECT version FROM calendar_year WHERE year = $1", year)
        if expected_version is not None and expected_version != (previous or 0):
            raise VersionConflict(year, expected_version, previous or 0)
        before = await year_days(conn, year)
        version = revision + 1
        await conn.execute("UPDATE calendar_revision SET version = $1", version)
        await conn.execute(
            """INSERT INTO calendar_year (year, version, source, loaded_by) VALUES ($1, $2, $3, $4)
               ON CONFLICT (year) DO UPDATE SET version = EXCLUDED.version, source = EXCLUDED.source,
                   loaded_by = EXCLUDED.loaded_by, loaded_at = clock_timestamp()""",
            year,
            version,
            source,
            loaded_by,
        )
        await conn.execute("DELETE FROM calendar_day WHERE year = $1", year)
        ordered = sorted(days.values(), key=lambda d: d.day)
        await conn.execute(
            """INSERT INTO calendar_day (day, year, kind, name)
               SELECT day, $1, kind, name
               FROM unnest($2::date[], $3::text[], $4::text[]) AS t(day, kind, name)""",
            year,
            [d.day for d in ordered],
            [d.kind.value for d in ordered],
            [d.name for d in ordered],
        )
        changes = diff(before, days)
        await conn.execute(
            """INSERT INTO calendar_load (version, year, previous_version, source, loaded_by,
                   days_added, days_removed, days_changed)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8)""",
            version,
            year,
            previous,
            source,
            loaded_by,
            len(changes.added),
            len(changes.removed),
            len(changes.changed),
        )
    # Outside the transaction: the count is only for the answer (the recompute
    # finds the registrations itself), and every other load waits on the lock.
    to_recompute = await count_to_recompute(conn, year)
    return LoadedYear(version=version, previous_version=previous, changes=changes, to_recompute=to_recompute)


async def forget_year(conn: asyncpg.Connection, year: int) -> int:
    """Take a year's schedule out (it becomes provisional again), as a new
    version; the calendar's version after it."""
    async with conn.transaction():
        revision: int = await conn.fetchval("SELECT version FROM calendar_revision FOR UPDATE")
        await conn.execute("DELETE FROM calendar_year WHERE year = $1", year)
        await conn.execute("UPDATE calendar_revision SET version = $1", revision + 1)
    return revision + 1


def _year_bounds(year: int) -> tuple[datetime, datetime]:
    return datetime(year, 1, 1, tzinfo=CHINA_TZ), datetime(year + 1, 1, 1, tzinfo=CHINA_TZ)


# Open registrations whose running working-day deadline is provisional, or was
# counted across the year ($1, $2: its first and next year's first instant).
_TO_RECOMPUTE = """FROM registration
    WHERE deadline_counted_from IS NOT NULL AND stage NOT IN ('active', 'closed')
      AND (deadline_provisional OR (deadline_counted_from < $2 AND next_deadline >= $1))"""


async def count_to_recompute(conn: asyncpg.Connection, year: int) -> int:
    count: int = await conn.fetchval(f"SELECT count(*) {_TO_RECOMPUTE}", *_year_bounds(year))
    return count


async def registrations_to_recompute(
    conn: asyncpg.Connection, year: int, after: str, limit: int
) -> list[str]:
    """The next ``limit`` ids (in id order, after ``after``) of the registrations
    a load of ``year`` may move the deadline of."""
    rows = await conn.fetch(
        f"SELECT id {_TO_RECOMPUTE} AND id > $3 ORDER BY id LIMIT {int(limit)}", *_year_bounds(year), after
    )
    return [r["id"] for r in rows]

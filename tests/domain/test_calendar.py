"""Chinese working-day arithmetic against the real 2025/2026 holiday schedule.

The dates asserted here are what chinese_calendar 1.11 says (checked, not
assumed): e.g. National Day 2025 is off 10-01..10-08 and Sunday 09-28 and
Saturday 10-11 are make-up working days.
"""

from __future__ import annotations

import ast
import inspect
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain import calendar as cal
from domain.calendar import CHINA_TZ, add_working_days, china_date, is_working_day, working_days_between


def cn(y: int, m: int, d: int, hh: int = 10, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=CHINA_TZ)


def test_china_tz_is_fixed_utc_plus_8() -> None:
    assert CHINA_TZ.utcoffset(None) == timedelta(hours=8)


@pytest.mark.parametrize(
    ("day", "working"),
    [
        (date(2025, 9, 26), True),  # Friday
        (date(2025, 9, 27), False),  # Saturday
        (date(2025, 9, 28), True),  # Sunday, make-up day for National Day
        (date(2025, 10, 1), False),
        (date(2025, 10, 6), False),  # Mid-Autumn inside the golden week
        (date(2025, 10, 8), False),
        (date(2025, 10, 9), True),
        (date(2025, 10, 11), True),  # Saturday, make-up day
        (date(2026, 1, 1), False),
        (date(2026, 1, 4), True),  # Sunday, make-up day
        (date(2026, 2, 14), True),  # Saturday, make-up day for Spring Festival
        (date(2026, 2, 16), False),
        (date(2026, 2, 23), False),
        (date(2026, 2, 24), True),
        (date(2026, 2, 28), True),  # Saturday, make-up day
    ],
)
def test_is_working_day_uses_official_schedule(day: date, working: bool) -> None:
    assert is_working_day(day) is working


def test_unknown_years_fall_back_to_monday_to_friday() -> None:
    # 2027's schedule is not in chinese_calendar 1.11; 2027-01-01 is a Friday.
    assert is_working_day(date(2027, 1, 1)) is True
    assert is_working_day(date(2027, 1, 2)) is False
    assert is_working_day(date(2003, 12, 31)) is True


@pytest.mark.parametrize(
    ("start", "n", "expected"),
    [
        (cn(2025, 9, 30), 1, cn(2025, 10, 9)),  # over the whole golden week
        (cn(2025, 9, 26), 1, cn(2025, 9, 28)),  # Friday -> make-up Sunday
        (cn(2025, 9, 26), 3, cn(2025, 9, 30)),
        (cn(2025, 9, 26), 4, cn(2025, 10, 9)),
        (cn(2025, 10, 1), 1, cn(2025, 10, 9)),  # from a holiday
        (cn(2025, 10, 9), 2, cn(2025, 10, 11)),  # make-up Saturday
        (cn(2025, 10, 9), 3, cn(2025, 10, 13)),
        (cn(2025, 9, 24, 17, 30), 5, cn(2025, 9, 30, 17, 30)),  # 5-day resubmission window
        (cn(2026, 2, 13), 1, cn(2026, 2, 14)),  # Spring Festival 2026
        (cn(2026, 2, 13), 2, cn(2026, 2, 24)),
        (cn(2026, 9, 30), 10, cn(2026, 10, 20)),  # Art. 26: report changes in 10 working days
        (cn(2026, 12, 31), 1, cn(2027, 1, 1)),  # into an unpublished year: Mon-Fri
        (cn(2027, 1, 1), 1, cn(2027, 1, 4)),
        (cn(2025, 9, 30), 0, cn(2025, 9, 30)),
        (cn(2025, 10, 9), -1, cn(2025, 9, 30)),  # backwards
        (cn(2025, 9, 29), -1, cn(2025, 9, 28)),
    ],
)
def test_add_working_days(start: datetime, n: int, expected: datetime) -> None:
    assert add_working_days(start, n) == expected


def test_add_working_days_uses_the_date_in_china_not_utc() -> None:
    # 17:00 UTC on 2025-09-30 is already 01:00 on 1 October in Beijing.
    start = datetime(2025, 9, 30, 17, 0, tzinfo=UTC)
    result = add_working_days(start, 1)
    assert result == cn(2025, 10, 9, 1, 0)
    assert result.tzinfo is UTC  # returned in the caller's timezone
    assert result == datetime(2025, 10, 8, 17, 0, tzinfo=UTC)


def test_add_working_days_keeps_other_offsets() -> None:
    start = datetime(2025, 9, 30, 3, 0, tzinfo=timezone(timedelta(hours=-5)))  # 16:00 Beijing
    result = add_working_days(start, 1)
    assert result.utcoffset() == timedelta(hours=-5)
    assert result.astimezone(CHINA_TZ) == cn(2025, 10, 9, 16, 0)


def test_naive_datetimes_are_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        add_working_days(datetime(2025, 9, 30, 10), 1)
    with pytest.raises(ValueError, match="timezone-aware"):
        working_days_between(datetime(2025, 9, 30, 10), cn(2025, 10, 9))


def test_china_date() -> None:
    assert china_date(datetime(2025, 9, 30, 16, 0, tzinfo=UTC)) == date(2025, 10, 1)
    assert china_date(datetime(2025, 9, 30, 15, 59, tzinfo=UTC)) == date(2025, 9, 30)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (cn(2025, 9, 30), cn(2025, 10, 9), 1),
        (cn(2025, 9, 30), cn(2025, 10, 9, 9, 59), 0),  # a full day needs the same clock time
        (cn(2025, 9, 30), cn(2025, 10, 8, 23, 59), 0),
        (cn(2025, 9, 26), cn(2025, 10, 13), 7),
        (cn(2025, 10, 1), cn(2025, 10, 5), 0),
        (cn(2025, 10, 1), cn(2025, 10, 1), 0),
        (cn(2025, 10, 13), cn(2025, 9, 26), -7),
    ],
)
def test_working_days_between(a: datetime, b: datetime, expected: int) -> None:
    assert working_days_between(a, b) == expected


moments = st.datetimes(
    min_value=datetime(2024, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(CHINA_TZ)
)


@settings(max_examples=300)
@given(start=moments, n=st.integers(min_value=-30, max_value=30))
def test_add_then_between_round_trips(start: datetime, n: int) -> None:
    end = add_working_days(start, n)
    start_is_working = is_working_day(china_date(start))
    # Counting back from a holiday skips to the working day before it, so the
    # backward direction only round-trips from a working day.
    if n >= 0 or start_is_working:
        assert working_days_between(start, end) == n
    if start_is_working:
        assert add_working_days(end, -n) == start
    if n > 0:
        assert end > start
        assert is_working_day(china_date(end))
        assert end.timetz() == start.timetz()
        assert working_days_between(start, end - timedelta(microseconds=1)) == n - 1


@settings(max_examples=300)
@given(a=moments, b=moments)
def test_between_is_the_largest_k_whose_deadline_has_passed(a: datetime, b: datetime) -> None:
    k = working_days_between(a, b)
    assert working_days_between(b, a) == -k
    if b >= a:
        assert k >= 0
        assert add_working_days(a, k) <= b
        assert add_working_days(a, k + 1) > b


def test_module_avoids_zoneinfo_and_the_clock() -> None:
    # It runs inside Temporal workflows, which replay: no tz database, no now().
    tree = ast.parse(inspect.getsource(cal))
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in (node.names if isinstance(node, ast.Import) else [ast.alias(node.module or "")])
    }
    assert imported <= {"__future__", "functools", "datetime", "chinese_calendar"}
    source = inspect.getsource(cal)
    assert ".now(" not in source and "today(" not in source

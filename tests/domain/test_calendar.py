"""Chinese working-day arithmetic, checked against the State Council's notices.

The notices of 2024, 2025 and 2026 (国务院办公厅关于…年部分节假日安排的通知) are
written out below as they were published; the seed files
(domain/data/holidays/) must hold exactly those days, and the deadlines across
Spring Festival, Labour Day and National Day, with their make-up working days,
are counted by hand from the notices.
"""

from __future__ import annotations

import ast
import inspect
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain import calendar as cal
from domain.calendar import (
    CHINA_TZ,
    MONDAY_TO_FRIDAY,
    WorkingCalendar,
    add_working_days,
    china_date,
    deadline,
    missing_years,
    working_days_between,
)
from tests.calendar_support import calendar_from, sample_2027, seed_calendar, seed_schedules

ROOT = Path(__file__).parents[2]
SEEDS = seed_calendar()
WITH_2027 = calendar_from(*seed_schedules(), sample_2027())


def d(text: str) -> date:
    return date.fromisoformat(text)


def cn(y: int, m: int, day: int, hh: int = 10, mm: int = 0) -> datetime:
    return datetime(y, m, day, hh, mm, tzinfo=CHINA_TZ)


# The notices as published: (holiday, first day off, last day off) and the
# make-up working days. "与周末连休" holidays list the one statutory day.
NOTICES: dict[int, tuple[list[tuple[str, str, str]], list[str]]] = {
    # 国办发明电〔2023〕7号
    2024: (
        [
            ("元旦", "2024-01-01", "2024-01-01"),
            ("春节", "2024-02-10", "2024-02-17"),
            ("清明节", "2024-04-04", "2024-04-06"),
            ("劳动节", "2024-05-01", "2024-05-05"),
            ("端午节", "2024-06-10", "2024-06-10"),
            ("中秋节", "2024-09-15", "2024-09-17"),
            ("国庆节", "2024-10-01", "2024-10-07"),
        ],
        ["2024-02-04", "2024-02-18", "2024-04-07", "2024-04-28", "2024-05-11", "2024-09-14", "2024-09-29",
         "2024-10-12"],
    ),
    # 国办发明电〔2024〕12号 (the first year with the extra Spring Festival and Labour Day days)
    2025: (
        [
            ("元旦", "2025-01-01", "2025-01-01"),
            ("春节", "2025-01-28", "2025-02-04"),
            ("清明节", "2025-04-04", "2025-04-06"),
            ("劳动节", "2025-05-01", "2025-05-05"),
            ("端午节", "2025-05-31", "2025-06-02"),
            ("国庆节、中秋节", "2025-10-01", "2025-10-08"),
        ],
        ["2025-01-26", "2025-02-08", "2025-04-27", "2025-09-28", "2025-10-11"],
    ),
    # 国办发明电〔2025〕7号
    2026: (
        [
            ("元旦", "2026-01-01", "2026-01-03"),
            ("春节", "2026-02-15", "2026-02-23"),
            ("清明节", "2026-04-04", "2026-04-06"),
            ("劳动节", "2026-05-01", "2026-05-05"),
            ("端午节", "2026-06-19", "2026-06-21"),
            ("中秋节", "2026-09-25", "2026-09-27"),
            ("国庆节", "2026-10-01", "2026-10-07"),
        ],
        ["2026-01-04", "2026-02-14", "2026-02-28", "2026-05-09", "2026-09-20", "2026-10-10"],
    ),
}  # fmt: skip


@pytest.mark.parametrize("year", sorted(NOTICES))
def test_the_seeds_hold_the_notice_of_the_year(year: int) -> None:
    ranges, makeup = NOTICES[year]
    off = {
        d(first) + timedelta(days=i)
        for _, first, last in ranges
        for i in range((d(last) - d(first)).days + 1)
    }
    seeded = next(s for s in seed_schedules() if s.year == year)
    assert [(h.name, h.start, h.last) for h in seeded.holidays] == [
        (name, d(first), d(last)) for name, first, last in ranges
    ]
    assert {m.date for m in seeded.makeup_days} == {d(x) for x in makeup}
    in_year = {x for x in SEEDS.holidays if x.year == year}
    assert in_year == off
    assert {x for x in SEEDS.makeup_days if x.year == year} == {d(x) for x in makeup}


@pytest.mark.parametrize(
    ("start", "n", "expected"),
    [
        # 2024 Spring Festival: off 02-10..02-17, Sundays 02-04 and 02-18 worked.
        (cn(2024, 2, 2), 1, cn(2024, 2, 4)),
        (cn(2024, 2, 8), 2, cn(2024, 2, 18)),
        (cn(2024, 2, 8), 3, cn(2024, 2, 19)),
        # 2024 Labour Day: off 05-01..05-05, Sunday 04-28 and Saturday 05-11 worked.
        (cn(2024, 4, 26), 1, cn(2024, 4, 28)),
        (cn(2024, 4, 26), 4, cn(2024, 5, 6)),
        (cn(2024, 5, 10), 1, cn(2024, 5, 11)),
        # 2024 National Day: off 10-01..10-07, Sunday 09-29 and Saturday 10-12 worked.
        (cn(2024, 9, 27), 1, cn(2024, 9, 29)),
        (cn(2024, 9, 27), 3, cn(2024, 10, 8)),
        (cn(2024, 10, 11), 1, cn(2024, 10, 12)),
        # 2025 Spring Festival: off 01-28..02-04, Sunday 01-26 and Saturday 02-08 worked.
        (cn(2025, 1, 24), 1, cn(2025, 1, 26)),
        (cn(2025, 1, 24), 3, cn(2025, 2, 5)),
        (cn(2025, 2, 7), 1, cn(2025, 2, 8)),
        # 2025 Labour Day: off 05-01..05-05, Sunday 04-27 worked.
        (cn(2025, 4, 25), 1, cn(2025, 4, 27)),
        (cn(2025, 4, 25), 5, cn(2025, 5, 6)),
        # 2025 National Day and Mid-Autumn: off 10-01..10-08, Sunday 09-28 and Saturday 10-11 worked.
        (cn(2025, 9, 26), 1, cn(2025, 9, 28)),
        (cn(2025, 9, 26), 4, cn(2025, 10, 9)),
        (cn(2025, 10, 9), 2, cn(2025, 10, 11)),
        (cn(2025, 9, 30), 10, cn(2025, 10, 21)),  # Art. 26: report changes in 10 working days
        # 2026 Spring Festival: off 02-15..02-23, Saturdays 02-14 and 02-28 worked.
        (cn(2026, 2, 13), 1, cn(2026, 2, 14)),
        (cn(2026, 2, 13), 2, cn(2026, 2, 24)),
        (cn(2026, 2, 27), 1, cn(2026, 2, 28)),
        # 2026 Labour Day: off 05-01..05-05, Saturday 05-09 worked.
        (cn(2026, 4, 30), 1, cn(2026, 5, 6)),
        (cn(2026, 4, 30), 4, cn(2026, 5, 9)),
        (cn(2026, 4, 30), 5, cn(2026, 5, 11)),
        # 2026 National Day: off 10-01..10-07, Sunday 09-20 and Saturday 10-10 worked.
        (cn(2026, 9, 18), 1, cn(2026, 9, 20)),
        (cn(2026, 9, 30), 3, cn(2026, 10, 10)),
        (cn(2026, 9, 30), 10, cn(2026, 10, 20)),
        # From a holiday, and backwards.
        (cn(2025, 10, 1), 1, cn(2025, 10, 9)),
        (cn(2025, 10, 9), -1, cn(2025, 9, 30)),
        (cn(2025, 9, 29), -1, cn(2025, 9, 28)),
        (cn(2025, 9, 30), 0, cn(2025, 9, 30)),
    ],
)
def test_working_days_across_the_notices(start: datetime, n: int, expected: datetime) -> None:
    due = deadline(start, n, SEEDS)
    assert due.at == expected
    assert not due.provisional


def test_a_count_into_a_year_without_an_official_schedule_is_provisional() -> None:
    """Issue 14: 2026-12-28 + 5 working days counted 1 January as a working day
    (2027-01-04) and said nothing. It still counts Monday to Friday, but says so."""
    provisional = deadline(cn(2026, 12, 28), 5, SEEDS)
    assert provisional.at == cn(2027, 1, 4)
    assert provisional.provisional and provisional.missing_years == (2027,)
    # With 2027's schedule (the sample: New Year's Day 01-01..01-03) it is the 5th.
    official = deadline(cn(2026, 12, 28), 5, WITH_2027)
    assert official.at == cn(2027, 1, 5)
    assert not official.provisional
    # 2027-09-30 + 5 landed inside National Day.
    assert deadline(cn(2027, 9, 30), 5, SEEDS).at == cn(2027, 10, 7)
    assert deadline(cn(2027, 9, 30), 5, WITH_2027).at == cn(2027, 10, 13)


def test_only_the_days_counted_make_a_count_provisional() -> None:
    assert not deadline(cn(2026, 12, 21), 5, SEEDS).provisional  # ends on 12-28
    assert not deadline(cn(2026, 12, 31, 23), 0, SEEDS).provisional
    assert deadline(cn(2026, 12, 31, 23), 1, SEEDS).missing_years == (2027,)
    assert deadline(cn(2027, 1, 4), -1, SEEDS).provisional  # back across 2027's first days
    assert deadline(cn(2028, 3, 1), 5, WITH_2027).missing_years == (2028,)
    assert MONDAY_TO_FRIDAY.official_years == frozenset()
    assert deadline(cn(2026, 3, 2), 1, MONDAY_TO_FRIDAY).provisional


@pytest.mark.parametrize(
    ("today", "official", "missing"),
    [
        (date(2026, 11, 1), {2026}, []),  # 61 days before 2027
        (date(2026, 11, 2), {2026}, [2027]),  # 60 days before
        (date(2026, 12, 1), {2026}, [2027]),
        (date(2026, 12, 1), {2026, 2027}, []),
        (date(2027, 1, 10), {2026}, [2027]),  # the year has begun without it
        (date(2027, 11, 2), {2027}, [2028]),
        (date(2027, 3, 1), set(), [2027]),
    ],
)
def test_missing_years(today: date, official: set[int], missing: list[int]) -> None:
    assert missing_years(today, official) == missing


def test_china_tz_is_fixed_utc_plus_8() -> None:
    assert CHINA_TZ.utcoffset(None) == timedelta(hours=8)


def test_add_working_days_uses_the_date_in_china_not_utc() -> None:
    # 17:00 UTC on 2025-09-30 is already 01:00 on 1 October in Beijing.
    start = datetime(2025, 9, 30, 17, 0, tzinfo=UTC)
    result = add_working_days(start, 1, SEEDS)
    assert result == cn(2025, 10, 9, 1, 0)
    assert result.tzinfo is UTC  # returned in the caller's timezone
    assert result == datetime(2025, 10, 8, 17, 0, tzinfo=UTC)


def test_add_working_days_keeps_other_offsets() -> None:
    start = datetime(2025, 9, 30, 3, 0, tzinfo=timezone(timedelta(hours=-5)))  # 16:00 Beijing
    result = add_working_days(start, 1, SEEDS)
    assert result.utcoffset() == timedelta(hours=-5)
    assert result.astimezone(CHINA_TZ) == cn(2025, 10, 9, 16, 0)


def test_naive_datetimes_are_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        add_working_days(datetime(2025, 9, 30, 10), 1, SEEDS)
    with pytest.raises(ValueError, match="timezone-aware"):
        working_days_between(datetime(2025, 9, 30, 10), cn(2025, 10, 9), SEEDS)


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
    assert working_days_between(a, b, SEEDS) == expected


moments = st.datetimes(
    min_value=datetime(2024, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(CHINA_TZ)
)
calendars = st.sampled_from([SEEDS, WITH_2027, MONDAY_TO_FRIDAY])


@settings(max_examples=300)
@given(start=moments, n=st.integers(min_value=-30, max_value=30), calendar=calendars)
def test_add_then_between_round_trips(start: datetime, n: int, calendar: WorkingCalendar) -> None:
    end = add_working_days(start, n, calendar)
    start_is_working = calendar.is_working_day(china_date(start))
    # Counting back from a holiday skips to the working day before it, so the
    # backward direction only round-trips from a working day.
    if n >= 0 or start_is_working:
        assert working_days_between(start, end, calendar) == n
    if start_is_working:
        assert add_working_days(end, -n, calendar) == start
    if n > 0:
        assert end > start
        assert calendar.is_working_day(china_date(end))
        assert end.timetz() == start.timetz()
        assert working_days_between(start, end - timedelta(microseconds=1), calendar) == n - 1


@settings(max_examples=300)
@given(a=moments, b=moments, calendar=calendars)
def test_between_is_the_largest_k_whose_deadline_has_passed(
    a: datetime, b: datetime, calendar: WorkingCalendar
) -> None:
    k = working_days_between(a, b, calendar)
    assert working_days_between(b, a, calendar) == -k
    if b >= a:
        assert k >= 0
        assert add_working_days(a, k, calendar) <= b
        assert add_working_days(a, k + 1, calendar) > b


def _imports(source: str) -> set[str]:
    tree = ast.parse(source)
    return {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in (node.names if isinstance(node, ast.Import) else [ast.alias(node.module or "")])
    }


def test_module_avoids_zoneinfo_and_the_clock() -> None:
    # Pure arithmetic over the calendar passed in: no tz database, no now(), no data.
    source = inspect.getsource(cal)
    assert _imports(source) <= {"__future__", "collections", "dataclasses", "datetime"}
    assert ".now(" not in source and "today(" not in source


@pytest.mark.parametrize("package", ["domain", "workflows"])
def test_no_calendar_library_in_the_domain_or_the_workflows(package: str) -> None:
    """Deadlines come from recorded data: nothing that replays reads a library's
    calendar, whose data changes between releases."""
    for path in sorted((ROOT / package).rglob("*.py")):
        assert "chinese_calendar" not in _imports(path.read_text()), path

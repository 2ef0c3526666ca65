"""A year's schedule as loaded: every problem named with its date, the days it
stores, and what replacing one schedule by another changes."""

from __future__ import annotations

from datetime import date

import pytest
from pydantic import ValidationError

from domain.holiday_schedule import (
    CalendarDay,
    DayKind,
    YearSchedule,
    check_schedule,
    days_of,
    diff,
    schedule_of,
)
from tests.calendar_support import sample_2027, seed_schedules


def schedule(**overrides: object) -> YearSchedule:
    data: dict[str, object] = {
        "year": 2027,
        "holidays": [{"name": "元旦", "start": "2027-01-01", "end": "2027-01-03"}],
        "makeup_days": [{"date": "2027-01-09", "name": "元旦"}],
    }
    return YearSchedule.model_validate(data | overrides)


def test_a_good_schedule_has_no_problems() -> None:
    assert check_schedule(schedule(), 2027) == []
    assert check_schedule(sample_2027(), 2027) == []


@pytest.mark.parametrize(
    ("overrides", "field", "code", "named"),
    [
        ({"year": 2026}, "year", "year_mismatch", "2026"),
        (
            {"holidays": [{"name": "元旦", "start": "2026-12-31", "end": "2027-01-02"}]},
            "holidays[0].start",
            "outside_year",
            "2026-12-31",
        ),
        (
            {"holidays": [{"name": "元旦", "start": "2027-12-31", "end": "2028-01-01"}]},
            "holidays[0].end",
            "outside_year",
            "2028-01-01",
        ),
        (
            {"holidays": [{"name": "国庆节", "start": "2027-10-07", "end": "2027-10-01"}]},
            "holidays[0].end",
            "range_reversed",
            "2027-10-01",
        ),
        (
            {
                "holidays": [
                    {"name": "中秋节", "start": "2027-09-15", "end": "2027-10-01"},
                    {"name": "国庆节", "start": "2027-10-01", "end": "2027-10-07"},
                ]
            },
            "holidays[1]",
            "overlapping_holidays",
            "2027-10-01",
        ),
        (
            {"makeup_days": [{"date": "2027-01-02", "name": "元旦"}]},
            "makeup_days[0].date",
            "holiday_and_makeup_day",
            "2027-01-02",
        ),
        (
            {"makeup_days": [{"date": "2027-01-11", "name": "元旦"}]},
            "makeup_days[0].date",
            "makeup_day_not_on_weekend",
            "2027-01-11 is a Monday",
        ),
        (
            {"makeup_days": [{"date": "2028-01-08", "name": "元旦"}]},
            "makeup_days[0].date",
            "outside_year",
            "2028-01-08",
        ),
        (
            {"makeup_days": [{"date": "2027-01-09", "name": "元旦"}, {"date": "2027-01-09", "name": "元旦"}]},
            "makeup_days[1].date",
            "duplicate_makeup_day",
            "2027-01-09",
        ),
    ],
)
def test_each_problem_names_its_date(overrides: dict[str, object], field: str, code: str, named: str) -> None:
    problems = check_schedule(schedule(**overrides), 2027)
    assert (field, code) in [(p.field, p.code) for p in problems], problems
    assert all(named in p.message for p in problems if p.code == code)


def test_every_problem_is_listed_at_once() -> None:
    bad = schedule(
        holidays=[{"name": "元旦", "start": "2026-12-31"}],
        makeup_days=[{"date": "2027-01-11", "name": "元旦"}, {"date": "2026-12-27", "name": "元旦"}],
    )
    assert [p.code for p in check_schedule(bad, 2027)] == [
        "outside_year",
        "makeup_day_not_on_weekend",
        "outside_year",
    ]


def test_a_huge_range_outside_the_year_is_refused_without_walking_it() -> None:
    bad = schedule(holidays=[{"name": "x", "start": "0001-01-01", "end": "9999-12-31"}], makeup_days=[])
    assert {p.code for p in check_schedule(bad, 2027)} == {"outside_year"}


@pytest.mark.parametrize(
    "data",
    [
        {"holidays": []},  # a schedule lists its holidays
        {"holidays": [{"name": "", "start": "2027-01-01"}]},
        {"holidays": [{"name": "元\u202e旦", "start": "2027-01-01"}]},  # hidden text
        {"holidays": [{"name": "元旦", "start": "2027-02-30"}]},
        {"holidays": [{"name": "元旦", "start": "2027-01-01", "from": "x"}]},  # unknown field
        {"holidays": [{"name": "元旦", "start": "2027-01-01"}], "source": "a\x00b"},
        {"year": 1900, "holidays": [{"name": "元旦", "start": "1900-01-01"}]},
    ],
)
def test_malformed_schedules_are_refused(data: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        YearSchedule.model_validate(data)


def test_days_and_back() -> None:
    for seeded in seed_schedules():
        assert seeded.year is not None
        again = schedule_of(seeded.year, days_of(seeded).values(), seeded.source)
        assert again == seeded


def test_a_one_day_holiday_may_give_its_start_alone() -> None:
    days = days_of(schedule(holidays=[{"name": "端午节", "start": "2027-06-09"}], makeup_days=[]))
    assert days == {date(2027, 6, 9): CalendarDay(date(2027, 6, 9), DayKind.HOLIDAY, "端午节")}


def test_diff_says_what_a_load_changes() -> None:
    before = days_of(schedule())
    after = days_of(
        schedule(
            holidays=[
                {"name": "元旦", "start": "2027-01-01", "end": "2027-01-02"},
                {"name": "春节", "start": "2027-02-08"},
            ],
            makeup_days=[{"date": "2027-01-09", "name": "春节"}],
        )
    )
    changes = diff(before, after)
    assert [c.day for c in changes.added] == [date(2027, 2, 8)]
    assert [c.day for c in changes.removed] == [date(2027, 1, 3)]
    assert [(c.day, c.before and c.before.name, c.after and c.after.name) for c in changes.changed] == [
        (date(2027, 1, 9), "元旦", "春节")
    ]
    assert diff(before, before).empty

"""A year's official holiday schedule (放假安排) as an administrator loads it.

The file format follows the State Council's notice: holiday ranges with their
names, and the weekend days worked in their place (调休), e.g.::

    year: 2026
    source: 国务院办公厅关于2026年部分节假日安排的通知
    holidays:
      - {name: 元旦, start: 2026-01-01, end: 2026-01-03}
      - {name: 春节, start: 2026-02-15, end: 2026-02-23}
    makeup_days:
      - {date: 2026-01-04, name: 元旦}
      - {date: 2026-02-14, name: 春节}

``check_schedule`` lists every problem, each naming the date at fault;
``days_of`` turns a checked schedule into the days stored; ``diff`` says what a
load changes; ``schedule_of`` gives the stored days back in the file's shape.

Pure: no I/O (the files are read by the callers: ``python -m app calendar load``,
``PUT /v1/calendar/{year}``, and the seeds in ``domain/data/holidays/``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date as Date
from datetime import timedelta
from enum import StrEnum
from typing import Annotated, NamedTuple

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

from domain.calendar import WorkingCalendar
from domain.hidden_text import has_hidden_characters

# Years a schedule may be loaded for: the People's Republic's holidays, within
# what anyone could plan for.
FIRST_YEAR = 1950
LAST_YEAR = 2199

_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _plain_text(value: str) -> str:
    """Text people read in the legal calendar: visible, storable, not blank."""
    value = value.strip()
    if not value:
        raise PydanticCustomError("blank", "Must not be only whitespace.")
    # Not printable: controls, NUL, unpaired surrogates, format characters.
    if not value.isprintable() or has_hidden_characters(value):
        raise PydanticCustomError("invalid_character", "Use visible characters only.")
    return value


Name = Annotated[
    str,
    Field(min_length=1, max_length=64, description="The holiday, as the notice names it."),
    AfterValidator(_plain_text),
]


class DayKind(StrEnum):
    HOLIDAY = "holiday"
    MAKEUP_DAY = "makeup_day"  # a weekend day worked in place of a holiday day (调休)


_MODEL = ConfigDict(frozen=True, extra="forbid")


class HolidayRange(BaseModel):
    """Days off, ``start`` to ``end`` inclusive, as the notice lists them (weekend
    days inside the range included). A one-day holiday may give ``start`` alone."""

    model_config = _MODEL

    name: Name
    start: Date
    end: Date | None = None

    @property
    def last(self) -> Date:
        return self.end or self.start


class MakeupDay(BaseModel):
    """A Saturday or Sunday worked in place of a day of the named holiday."""

    model_config = _MODEL

    date: Date
    name: Name


class YearSchedule(BaseModel):
    """One year's schedule. ``year`` may be left out where the year is given
    elsewhere (the path of ``PUT /v1/calendar/{year}``)."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        json_schema_extra={
            "example": {
                "year": 2026,
                "source": "国务院办公厅关于2026年部分节假日安排的通知",
                "holidays": [
                    {"name": "元旦", "start": "2026-01-01", "end": "2026-01-03"},
                    {"name": "春节", "start": "2026-02-15", "end": "2026-02-23"},
                ],
                "makeup_days": [
                    {"date": "2026-01-04", "name": "元旦"},
                    {"date": "2026-02-14", "name": "春节"},
                ],
            }
        },
    )

    year: Annotated[int | None, Field(ge=FIRST_YEAR, le=LAST_YEAR)] = None
    source: Annotated[
        str | None,
        Field(max_length=500, description="Where the schedule comes from (the notice)."),
        AfterValidator(lambda v: None if v is None else _plain_text(v)),
    ] = None
    holidays: Annotated[list[HolidayRange], Field(min_length=1, max_length=40)]
    makeup_days: Annotated[list[MakeupDay], Field(max_length=40)] = Field(default_factory=list)


class ScheduleProblem(NamedTuple):
    """What is wrong with a schedule: the field at fault, a stable code, and a
    message that names the date."""

    field: str
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class CalendarDay:
    day: Date
    kind: DayKind
    name: str


def check_schedule(schedule: YearSchedule, year: int) -> list[ScheduleProblem]:
    """Every problem of ``schedule`` as the schedule of ``year``: dates outside the
    year, reversed or overlapping ranges, a day both off and worked, make-up days
    that are not on a weekend, a make-up day listed twice."""
    problems: list[ScheduleProblem] = []
    if schedule.year is not None and schedule.year != year:
        problems.append(
            ScheduleProblem("year", "year_mismatch", f"The schedule is for {schedule.year}, not {year}.")
        )
    off: dict[Date, str] = {}
    for i, holiday in enumerate(schedule.holidays):
        where = f"holidays[{i}]"
        for key, day in (("start", holiday.start), ("end", holiday.end)):
            if day is not None and day.year != year:
                problems.append(ScheduleProblem(f"{where}.{key}", "outside_year", f"{day} is not in {year}."))
        if holiday.last < holiday.start:
            problems.append(
                ScheduleProblem(
                    f"{where}.end",
                    "range_reversed",
                    f"{holiday.last} is before the start of {holiday.name} ({holiday.start}).",
                )
            )
            continue
        # Only the days inside the year (those outside are reported above).
        for day in _days(max(holiday.start, Date(year, 1, 1)), min(holiday.last, Date(year, 12, 31))):
            if day in off:
                problems.append(
                    ScheduleProblem(
                        where, "overlapping_holidays", f"{day} is in {off[day]} and in {holiday.name}."
                    )
                )
            else:
                off[day] = holiday.name
    worked: set[Date] = set()
    for i, makeup in enumerate(schedule.makeup_days):
        where = f"makeup_days[{i}].date"
        day = makeup.date
        if day.year != year:
            problems.append(ScheduleProblem(where, "outside_year", f"{day} is not in {year}."))
        if day in off:
            problems.append(
                ScheduleProblem(
                    where,
                    "holiday_and_makeup_day",
                    f"{day} is both a holiday ({off[day]}) and a make-up working day.",
                )
            )
        if day.weekday() < 5:
            problems.append(
                ScheduleProblem(
                    where,
                    "makeup_day_not_on_weekend",
                    f"{day} is a {_WEEKDAYS[day.weekday()]}: make-up working days are Saturdays or Sundays.",
                )
            )
        if day in worked:
            problems.append(ScheduleProblem(where, "duplicate_makeup_day", f"{day} is listed twice."))
        worked.add(day)
    return problems


def days_of(schedule: YearSchedule) -> dict[Date, CalendarDay]:
    """The days a checked schedule stores, by date."""
    days: dict[Date, CalendarDay] = {}
    for holiday in schedule.holidays:
        for day in _days(holiday.start, holiday.last):
            days[day] = CalendarDay(day, DayKind.HOLIDAY, holiday.name)
    for makeup in schedule.makeup_days:
        days[makeup.date] = CalendarDay(makeup.date, DayKind.MAKEUP_DAY, makeup.name)
    return days


def schedule_of(year: int, days: Iterable[CalendarDay], source: str | None = None) -> YearSchedule:
    """Stored days in the file's shape: consecutive holiday days of one name make
    one range."""
    holidays: list[HolidayRange] = []
    makeup: list[MakeupDay] = []
    for d in sorted(days, key=lambda d: d.day):
        if d.kind is DayKind.MAKEUP_DAY:
            makeup.append(MakeupDay(date=d.day, name=d.name))
            continue
        last = holidays[-1] if holidays else None
        if last is not None and last.name == d.name and last.last + timedelta(days=1) == d.day:
            holidays[-1] = last.model_copy(update={"end": d.day})
        else:
            holidays.append(HolidayRange(name=d.name, start=d.day, end=d.day))
    return YearSchedule(year=year, source=source, holidays=holidays, makeup_days=makeup)


class DayChange(NamedTuple):
    day: Date
    before: CalendarDay | None
    after: CalendarDay | None


class ScheduleDiff(NamedTuple):
    added: list[DayChange]
    removed: list[DayChange]
    changed: list[DayChange]

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed)


def diff(before: Mapping[Date, CalendarDay], after: Mapping[Date, CalendarDay]) -> ScheduleDiff:
    """What replacing ``before`` by ``after`` changes, day by day, in date order."""
    added = [DayChange(d, None, after[d]) for d in sorted(after.keys() - before.keys())]
    removed = [DayChange(d, before[d], None) for d in sorted(before.keys() - after.keys())]
    changed = [
        DayChange(d, before[d], after[d])
        for d in sorted(before.keys() & after.keys())
        if (before[d].kind, before[d].name) != (after[d].kind, after[d].name)
    ]
    return ScheduleDiff(added, removed, changed)


def calendar_of(days: Iterable[CalendarDay], official_years: Iterable[int], version: int) -> WorkingCalendar:
    """The working calendar the stored days make."""
    holidays: set[Date] = set()
    makeup: set[Date] = set()
    for d in days:
        (makeup if d.kind is DayKind.MAKEUP_DAY else holidays).add(d.day)
    return WorkingCalendar(
        holidays=frozenset(holidays),
        makeup_days=frozenset(makeup),
        official_years=frozenset(official_years),
        version=version,
    )


def _days(first: Date, last: Date) -> Iterable[Date]:
    day = first
    while day <= last:
        yield day
        day += timedelta(days=1)

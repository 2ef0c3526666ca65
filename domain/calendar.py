"""Chinese working-day arithmetic for regulatory deadlines, over a calendar passed in.

Deadlines such as "resubmit within 5 working days" or "report changes within
10 working days" count Chinese working days: statutory holidays are off and
make-up weekend days (调休) are on. Which days those are is data: the State
Council publishes each year's schedule (放假安排) in the autumn before, and an
administrator loads it (``calendar_day`` / ``calendar_year`` in PostgreSQL,
``docs/calendar.md``). This module only counts, over a ``WorkingCalendar``
value that its caller read from there.

A count that crosses a year whose official schedule is not loaded is made on the
Monday-to-Friday rule and marked *provisional* (``Deadline.provisional``): the
holidays of that year are not known yet, and the deadline is recomputed once
they are.

Pure and deterministic: China time is a fixed UTC+08:00 offset (China has had no
daylight saving since 1991, and zoneinfo reads tz files, whose contents differ
between machines), and the wall clock is never consulted.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone

CHINA_TZ = timezone(timedelta(hours=8))

_ONE_DAY = timedelta(days=1)

# How long before a year starts its official schedule is expected to be loaded:
# the State Council publishes it between October and December.
MISSING_YEAR_LEAD_DAYS = 60


@dataclass(frozen=True, slots=True)
class WorkingCalendar:
    """The days that differ from Monday to Friday, for the years whose official
    schedule is known, at one version of the stored calendar.

    ``holidays`` may include weekend days inside a holiday range (the notices
    list ranges such as 10-01..10-08); ``makeup_days`` are the weekend days
    worked instead (调休)."""

    holidays: frozenset[date] = frozenset()
    makeup_days: frozenset[date] = frozenset()
    official_years: frozenset[int] = frozenset()
    version: int = 0

    def is_working_day(self, day: date) -> bool:
        if day in self.makeup_days:
            return True
        return day.weekday() < 5 and day not in self.holidays

    def is_official(self, year: int) -> bool:
        return year in self.official_years


# No official year at all: every count is Monday to Friday, and provisional.
MONDAY_TO_FRIDAY = WorkingCalendar()


@dataclass(frozen=True, slots=True)
class Deadline:
    """A deadline counted in working days, and whether the count is provisional:
    counted across ``missing_years``, for which no official schedule is loaded."""

    at: datetime
    missing_years: tuple[int, ...] = field(default=())

    @property
    def provisional(self) -> bool:
        return bool(self.missing_years)


def china_date(moment: datetime) -> date:
    """The calendar date in China at ``moment``."""
    return _to_china(moment).date()


def add_working_days(start: datetime, n: int, calendar: WorkingCalendar) -> datetime:
    """The same China-local clock time ``n`` working days after ``start``.

    Only the days after ``start``'s China date are counted, so from a Saturday
    or a holiday one working day later is the first working day after it.
    A negative ``n`` counts backwards. The result is in ``start``'s timezone.
    """
    local = _to_china(start)
    day = local.date()
    step = _ONE_DAY if n >= 0 else -_ONE_DAY
    remaining = abs(n)
    while remaining:
        day += step
        if calendar.is_working_day(day):
            remaining -= 1
    result = datetime.combine(day, local.timetz())
    return result.astimezone(start.tzinfo)


def deadline(start: datetime, n: int, calendar: WorkingCalendar) -> Deadline:
    """``n`` working days after ``start`` (``add_working_days``), with the years
    the count crossed that have no official schedule."""
    at = add_working_days(start, n, calendar)
    first, last = sorted((china_date(start), china_date(at)))
    if first == last:
        return Deadline(at)
    # The days counted are those after the earlier date, up to the later one.
    counted = range((first + _ONE_DAY).year, last.year + 1)
    return Deadline(at, tuple(y for y in counted if not calendar.is_official(y)))


def working_days_between(a: datetime, b: datetime, calendar: WorkingCalendar) -> int:
    """Whole working days elapsed from ``a`` to ``b``.

    The largest ``k`` with ``add_working_days(a, k) <= b``, so that
    ``working_days_between(a, add_working_days(a, n)) == n`` and
    "``n`` working days have passed" is ``working_days_between(a, now) >= n``.
    Negative (``-working_days_between(b, a)``) when ``b`` is before ``a``.
    """
    la, lb = _to_china(a), _to_china(b)
    if lb < la:
        return -working_days_between(b, a, calendar)
    count = 0
    day = la.date()
    end = lb.date()
    while day < end:
        day += _ONE_DAY
        if calendar.is_working_day(day):
            count += 1
    # The last counted day is b's own date only if that date is a working day;
    # then a full day has elapsed only once b's clock reaches a's.
    if count and calendar.is_working_day(end) and _clock(lb) < _clock(la):
        count -= 1
    return count


def missing_years(
    today: date, official_years: Iterable[int], lead_days: int = MISSING_YEAR_LEAD_DAYS
) -> list[int]:
    """The years whose official schedule is missing and needed: this year, and
    next year once ``today`` is within ``lead_days`` of its first day."""
    official = set(official_years)
    wanted = [today.year]
    if (date(today.year + 1, 1, 1) - today).days <= lead_days:
        wanted.append(today.year + 1)
    return [y for y in wanted if y not in official]


def _to_china(moment: datetime) -> datetime:
    # A naive datetime has no defined instant; guessing UTC or China time would
    # move a legal deadline by eight hours without anyone noticing.
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("datetime must be timezone-aware")
    return moment.astimezone(CHINA_TZ)


def _clock(local: datetime) -> time:
    return local.time()

"""Chinese working-day arithmetic for regulatory deadlines.

Deadlines such as "resubmit within 5 working days" or "report changes within
10 working days" count Chinese working days: statutory holidays are off and
make-up weekend days (调休) are on.

This module runs inside Temporal workflows, so it must stay deterministic and
free of import-time side effects: China time is a fixed UTC+08:00 offset (China
has had no daylight saving since 1991, and zoneinfo reads tz files, whose
contents differ between machines a history may replay on), and the wall clock is
never consulted.
"""

from __future__ import annotations

import functools
from datetime import date, datetime, time, timedelta, timezone

import chinese_calendar

CHINA_TZ = timezone(timedelta(hours=8))

_ONE_DAY = timedelta(days=1)


@functools.lru_cache(maxsize=4096)
def is_working_day(day: date) -> bool:
    """Whether ``day`` is a Chinese working day.

    chinese_calendar only knows the years for which the State Council has
    published the holiday schedule (announced each November for the next year);
    outside them we assume Monday to Friday rather than fail, because a
    deadline a little early or late beats a workflow that cannot proceed.
    """
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:
        return day.weekday() < 5


def china_date(moment: datetime) -> date:
    """The calendar date in China at ``moment``."""
    return _to_china(moment).date()


def add_working_days(start: datetime, n: int) -> datetime:
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
        if is_working_day(day):
            remaining -= 1
    result = datetime.combine(day, local.timetz())
    return result.astimezone(start.tzinfo)


def working_days_between(a: datetime, b: datetime) -> int:
    """Whole working days elapsed from ``a`` to ``b``.

    The largest ``k`` with ``add_working_days(a, k) <= b``, so that
    ``working_days_between(a, add_working_days(a, n)) == n`` and
    "``n`` working days have passed" is ``working_days_between(a, now) >= n``.
    Negative (``-working_days_between(b, a)``) when ``b`` is before ``a``.
    """
    la, lb = _to_china(a), _to_china(b)
    if lb < la:
        return -working_days_between(b, a)
    count = 0
    day = la.date()
    end = lb.date()
    while day < end:
        day += _ONE_DAY
        if is_working_day(day):
            count += 1
    # The last counted day is b's own date only if that date is a working day;
    # then a full day has elapsed only once b's clock reaches a's.
    if count and is_working_day(end) and _clock(lb) < _clock(la):
        count -= 1
    return count


def _to_china(moment: datetime) -> datetime:
    # A naive datetime has no defined instant; guessing UTC or China time would
    # move a legal deadline by eight hours without anyone noticing.
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("datetime must be timezone-aware")
    return moment.astimezone(CHINA_TZ)


def _clock(local: datetime) -> time:
    return local.time()

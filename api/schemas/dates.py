"""Dates a request carries: ISO 8601 with a UTC offset, inside a sensible window.

Anything a client sends as a date-time is checked here before it reaches a query
or a workflow: a number (read as a Unix time by pydantic), a time without an
offset, or one outside the window is 422 naming the field. Python's datetime
spans years 1 to 9999, PostgreSQL's and the working-day arithmetic's are other
ranges, and an offset of +14:00 on 0001-01-01 is an instant before year 1: each
of those was a 500, or a workflow task failing, before the window.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Final

from pydantic import AfterValidator, BeforeValidator
from pydantic_core import PydanticCustomError

# No registration, event or key in this system predates this.
EARLIEST: Final = datetime(2000, 1, 1, tzinfo=UTC)
# The furthest ahead a client may name a time: no deadline or filter of this
# system reaches further (an activation has a tighter limit of its own).
AHEAD: Final = timedelta(days=731)

_ISO_8601 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:?\d{2})?")
FORMAT_HINT = "Give an ISO 8601 date-time with its UTC offset, e.g. 2026-11-25T09:00:00+08:00."
# An offset whose "+" a query string turned into a space (curl "...?since=...T09:00:00+08:00").
_PLUS_AS_SPACE = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)? \d{2}:?\d{2}")
PLUS_HINT = (
    "The offset's '+' arrived as a space, as a '+' in a URL's query does: write it %2B "
    "(2026-11-25T09:00:00%2B08:00), or give the time in UTC with Z."
)


def latest(now: datetime) -> datetime:
    return now + AHEAD


def in_window(value: datetime, earliest: datetime, last: datetime) -> bool:
    try:
        return earliest <= value <= last
    except OverflowError:  # an offset that moves the instant out of datetime's range
        return False


def _iso_text(value: object) -> object:
    if isinstance(value, str):
        if not _ISO_8601.fullmatch(value.strip()):
            hint = PLUS_HINT if _PLUS_AS_SPACE.fullmatch(value.strip()) else FORMAT_HINT
            raise PydanticCustomError("datetime_format", hint)
        return value.strip()
    if isinstance(value, datetime):
        return value
    # A number would be read as a Unix time: created_to=0.5 meant 1970.
    raise PydanticCustomError("datetime_type", FORMAT_HINT)


def _aware_in_window(value: datetime) -> datetime:
    if value.utcoffset() is None:
        raise PydanticCustomError("timezone_required", FORMAT_HINT)
    now = datetime.now(UTC)
    if not in_window(value, EARLIEST, latest(now)):
        raise PydanticCustomError(
            "out_of_range",
            "Give a time between {earliest} and {latest}.",
            {"earliest": EARLIEST.date().isoformat(), "latest": latest(now).date().isoformat()},
        )
    return value


# A date-time in a query or a body: ISO 8601 text with an offset, 2000-01-01 to now + 2 years.
RequestDatetime = Annotated[datetime, BeforeValidator(_iso_text), AfterValidator(_aware_in_window)]

"""Shared pieces of the API's models: pages, opaque cursors and reasons."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, TypeVar

from pydantic import AfterValidator, BaseModel, Field, PlainSerializer, WithJsonSchema
from pydantic_core import PydanticCustomError

from api.errors import BadRequest, InvalidInput, field_error
from api.textguard import check_storable, check_visible

T = TypeVar("T")


def not_blank(value: str) -> str:
    value = value.strip()
    if not value:
        raise PydanticCustomError("blank", "Must not be only whitespace.")
    return value


# The length constraints come before the validators, so that pydantic checks
# them on the string itself (after a validator it reports them about "items").
# Reasons are read by people (the timeline, the console): nothing invisible that
# changes how they read, as for names (a bidi override reverses a reason on screen).
Reason = Annotated[
    str,
    Field(min_length=1, max_length=1000, description="Why; recorded in the timeline."),
    AfterValidator(check_storable),
    AfterValidator(check_visible),
    AfterValidator(not_blank),
]
OptionalReason = Annotated[
    str, Field(max_length=1000), AfterValidator(check_storable), AfterValidator(check_visible)
]
# The name of an application field, as a change request or a details report names it.
FieldName = Annotated[
    str,
    Field(min_length=1, max_length=128),
    AfterValidator(check_storable),
    AfterValidator(check_visible),
    AfterValidator(not_blank),
]


# --------------------------------------------------------------------------
# Timestamps: every one the API answers is RFC 3339 in UTC, ending in Z,
# whatever offset it was given in (a client compares them as text, and sorts
# them, only if they share one form).
# --------------------------------------------------------------------------

TIMESTAMP_FORM = (
    "RFC 3339 in UTC with a `Z` suffix, e.g. `2026-12-20T01:00:00Z` (fractions of a second when any)"
)

# A timestamp inside free-form JSON (a summary, an event payload): an ISO
# 8601 date and time with a UTC offset, as datetime.isoformat() writes it.
_TIMESTAMP_TEXT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|[+-]\d{2}:\d{2})")


def utc_text(value: datetime) -> str:
    """``value`` as RFC 3339 in UTC with ``Z``; a naive value is taken as UTC."""
    aware = value if value.utcoffset() is not None else value.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat().removesuffix("+00:00") + "Z"


def utc_in_json(value: Any) -> Any:
    """``value`` (JSON-ready data) with every timestamp in it rewritten by ``utc_text``."""
    if isinstance(value, str):
        if _TIMESTAMP_TEXT.fullmatch(value):
            try:
                return utc_text(datetime.fromisoformat(value))
            except ValueError:
                return value  # shaped like one, but not a real date: left as given
        return value
    if isinstance(value, datetime):
        return utc_text(value)
    if isinstance(value, dict):
        return {k: utc_in_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [utc_in_json(v) for v in value]
    return value


UtcDateTime = Annotated[
    datetime,
    PlainSerializer(utc_text, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
"""A timestamp in a response: written as ``utc_text`` does."""

JsonObject = Annotated[dict[str, Any], PlainSerializer(utc_in_json, when_used="json")]
"""Free-form JSON in a response, its timestamps written as ``utc_text`` does."""


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null when this is the last page."
    )


def _fingerprint(bound: Any) -> str:
    canonical = json.dumps(bound, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def encode_cursor(kind: str, values: list[Any], bound: Any = None) -> str:
    """An opaque cursor of ``values``, tied to the query it continues: ``bound``
    (the filters) is kept as a fingerprint, which decode_cursor compares."""
    raw = json.dumps([kind, _fingerprint(bound), *values], separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, kind: str, arity: int, bound: Any = None) -> list[Any]:
    """The values of a cursor made by ``encode_cursor(kind, ..., bound)``; 422 if it is
    not such a cursor, 400 if it was made for other filters (``bound``)."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, TypeError):
        data = None
    if not isinstance(data, list) or len(data) != arity + 2 or data[0] != kind:
        raise InvalidInput(
            errors=[
                field_error(
                    "cursor", "invalid_cursor", "Pass back a next_cursor from this listing unchanged."
                )
            ]
        )
    if data[1] != _fingerprint(bound):
        # Reading on with other filters would skip or repeat rows without a word.
        raise BadRequest(
            "This cursor continues a listing with other filters: send the same filters as for the "
            "first page, or leave cursor out to start again",
            code="cursor_mismatch",
            errors=[
                field_error(
                    "cursor", "cursor_mismatch", "The filters differ from those the cursor was made for."
                )
            ],
        )
    return data[2:]

"""Shared pieces of the API's models: pages, opaque cursors and reasons."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Annotated, Any, Generic, TypeVar

from pydantic import AfterValidator, BaseModel, Field
from pydantic_core import PydanticCustomError

from api.errors import BadRequest, InvalidInput, field_error
from api.textguard import check_storable

T = TypeVar("T")


def not_blank(value: str) -> str:
    value = value.strip()
    if not value:
        raise PydanticCustomError("blank", "Must not be only whitespace.")
    return value


# The length constraints come before the validators, so that pydantic checks
# them on the string itself (after a validator it reports them about "items").
Reason = Annotated[
    str,
    Field(min_length=1, max_length=1000, description="Why; recorded in the timeline."),
    AfterValidator(check_storable),
    AfterValidator(not_blank),
]
OptionalReason = Annotated[str, Field(max_length=1000), AfterValidator(check_storable)]
# The name of an application field, as a change request or a details report names it.
FieldName = Annotated[
    str, Field(min_length=1, max_length=128), AfterValidator(check_storable), AfterValidator(not_blank)
]


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

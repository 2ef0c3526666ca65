"""Shared pieces of the API's models: pages, opaque cursors and reasons."""

from __future__ import annotations

import base64
import json
from typing import Annotated, Any, Generic, TypeVar

from pydantic import AfterValidator, BaseModel, Field
from pydantic_core import PydanticCustomError

from api.errors import InvalidInput, field_error
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


def encode_cursor(kind: str, values: list[Any]) -> str:
    raw = json.dumps([kind, *values], separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, kind: str, arity: int) -> list[Any]:
    """The values of a cursor made by ``encode_cursor(kind, ...)``; 422 if it is not one."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, TypeError):
        data = None
    if not isinstance(data, list) or len(data) != arity + 1 or data[0] != kind:
        raise InvalidInput(
            errors=[
                field_error(
                    "cursor", "invalid_cursor", "Pass back a next_cursor from this listing unchanged."
                )
            ]
        )
    return data[1:]

"""Shared pieces of the API's models: pages and opaque cursors."""

from __future__ import annotations

import base64
import json
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field

from api.errors import InvalidInput, field_error

T = TypeVar("T")


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

"""Text PostgreSQL cannot store: NUL characters and lone UTF-16 surrogates.

Both are valid in JSON (``"\\u0000"``, ``"\\ud800"``) and in a query string
(``%00``), and both make asyncpg or PostgreSQL fail, which would surface as a 500,
or worse, as an activity retrying forever on an event it cannot write. So they are
refused at the edge, as 422 naming the field.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import parse_qsl

from pydantic import AfterValidator
from pydantic_core import PydanticCustomError
from starlette.types import ASGIApp, Receive, Scope, Send

from api.errors import field_error, problem
from domain import hidden_text
from domain.hidden_text import has_hidden_characters

MESSAGE = "Remove NUL characters and unpaired surrogates (\\u0000, \\ud800-\\udfff) from this field."


def is_unsafe(text: str) -> bool:
    if "\x00" in text:
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def unsafe_fields(data: Any, path: str = "") -> list[str]:
    """Paths (``a.b[2].c``) of every string in ``data`` that cannot be stored; keys included."""
    found: list[str] = []
    if isinstance(data, str):
        if is_unsafe(data):
            found.append(path)
    elif isinstance(data, dict):
        for key, value in data.items():
            child = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and is_unsafe(key):
                found.append(path or "")
            found += unsafe_fields(value, child)
    elif isinstance(data, list):
        for index, value in enumerate(data):
            found += unsafe_fields(value, f"{path}[{index}]")
    return found


def check_storable(value: str) -> str:
    if is_unsafe(value):
        raise PydanticCustomError("invalid_character", MESSAGE)
    return value


def check_visible(value: str) -> str:
    if has_hidden_characters(value):
        raise PydanticCustomError("hidden_characters", hidden_text.MESSAGE)
    return value


# For str fields of request models.
SafeStr = Annotated[str, AfterValidator(check_storable)]
# For names people read and act on: nothing invisible that changes how they read (domain.hidden_text).
VisibleStr = Annotated[str, AfterValidator(check_storable), AfterValidator(check_visible)]


class QueryGuardMiddleware:
    """Refuses query parameters and paths that carry unstorable characters."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            bad = self._bad_fields(scope)
            if bad:
                response = problem(
                    422,
                    "invalid_input",
                    "Invalid input",
                    "The request has invalid fields",
                    scope["path"],
                    [field_error(name, "invalid_character", MESSAGE) for name in bad],
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)

    @staticmethod
    def _bad_fields(scope: Scope) -> list[str]:
        bad = ["path"] if is_unsafe(scope["path"]) else []
        query = scope.get("query_string", b"")
        if b"%00" in query or b"\x00" in query:
            pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True)
            bad += sorted({name for name, value in pairs if is_unsafe(name) or is_unsafe(value)} or {"query"})
        return bad

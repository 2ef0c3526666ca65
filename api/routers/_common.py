"""Shared route plumbing: dependencies, pagination parameters, documented errors."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import Depends, Query, Request

from api.db import Context, get_context
from api.errors import InvalidInput, Problem, UnsupportedMediaType, field_error
from api.services.workflow import WorkflowGateway

Ctx = Annotated[Context, Depends(get_context)]


async def get_gateway(request: Request) -> WorkflowGateway:
    """The gateway to the workflows, for a route that needs one: a 503 before the
    route does anything when no workflow could answer it (api/readiness.py)."""
    gateway: WorkflowGateway = request.app.state.gateway
    gateway.require_available()
    return gateway


Gateway = Annotated[WorkflowGateway, Depends(get_gateway)]


def is_json(content_type: str | None) -> bool:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


async def json_body(request: Request) -> Any:
    """The body of a route that reads raw JSON (checked field by field later):
    415 unless it is declared JSON, 422 unless it parses."""
    if not is_json(request.headers.get("content-type")):
        raise UnsupportedMediaType(
            "Send the body as JSON",
            errors=[field_error("Content-Type", "unsupported_media_type", "Use application/json.")],
        )
    raw = await request.body()
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):  # not UTF-8 or not JSON; nested too deep
        raise InvalidInput(
            "The body is not valid JSON",
            errors=[field_error("body", "invalid_json", "Send one JSON object, encoded as UTF-8.")],
        ) from None


JsonBody = Annotated[Any, Depends(json_body)]

Limit = Annotated[int, Query(ge=1, le=200, description="Page size.")]
Cursor = Annotated[
    str | None,
    Query(
        max_length=512,
        description="The `next_cursor` of the previous page, unchanged, sent with the same filters "
        "(other filters are 400 `cursor_mismatch`).",
    ),
]

_DESCRIPTIONS = {
    400: "A cursor sent with other filters than the page it came from (`cursor_mismatch`).",
    401: "No API key, or not a valid one.",
    403: "The key's role may not call this route.",
    404: "No such resource, or it belongs to another organisation.",
    409: "The request conflicts with the current state; the body says why (and carries that state).",
    413: "The body or file is larger than allowed.",
    415: "The body or file is not of an accepted type (JSON bodies: application/json), or a file's "
    "content does not match its type.",
    422: "Invalid input; `errors` names each field at fault.",
    429: "Too many failed authentications from this key id or address, or too many event streams open "
    "for this key; retry after `Retry-After` seconds.",
    503: "PostgreSQL or Temporal is unavailable; retry after `Retry-After` seconds.",
}


def documented(*statuses: int) -> dict[str, Any]:
    """Route keyword arguments documenting the error responses (problem+json).

    Every authenticated route can answer 401, 403, 422, 429 and 503; ``statuses`` adds
    the route's own (404, 409, ...). The roles allowed are added to the OpenAPI
    document from each route's ``allow(...)`` dependency (see api.openapi).
    """
    codes = sorted({401, 403, 422, 429, 503, *statuses})
    responses: dict[int | str, dict[str, Any]] = {
        code: {"model": Problem, "description": _DESCRIPTIONS[code]} for code in codes
    }
    return {"responses": responses}

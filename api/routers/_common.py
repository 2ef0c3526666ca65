"""Shared route plumbing: dependencies, pagination parameters, documented errors."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Query, Request

from api.db import Context, get_context
from api.errors import Problem
from api.services.workflow import WorkflowGateway

Ctx = Annotated[Context, Depends(get_context)]


async def get_gateway(request: Request) -> WorkflowGateway:
    gateway: WorkflowGateway = request.app.state.gateway
    return gateway


Gateway = Annotated[WorkflowGateway, Depends(get_gateway)]

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
    415: "The file is not one of the accepted types, or its content does not match its type.",
    422: "Invalid input; `errors` names each field at fault.",
    503: "PostgreSQL or Temporal is unavailable; retry after `Retry-After` seconds.",
}


def documented(*statuses: int) -> dict[str, Any]:
    """Route keyword arguments documenting the error responses (problem+json).

    Every authenticated route can answer 401, 403, 422 and 503; ``statuses`` adds
    the route's own (404, 409, ...). The roles allowed are added to the OpenAPI
    document from each route's ``allow(...)`` dependency (see api.openapi).
    """
    codes = sorted({401, 403, 422, 503, *statuses})
    responses: dict[int | str, dict[str, Any]] = {
        code: {"model": Problem, "description": _DESCRIPTIONS[code]} for code in codes
    }
    return {"responses": responses}

"""One error base class carrying the HTTP status, one handler formatting every error
as RFC 9457 ``application/problem+json`` with a stable code. No stack trace ever
reaches a client.

Failures of PostgreSQL or Temporal that mean "not reachable right now" become 503
with Retry-After wherever they surface, so routes do not each have to catch them.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from temporalio.client import WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.service import RPCError, RPCStatusCode

from app.logging_setup import request_id_var

log = logging.getLogger("api")

PROBLEM_JSON = "application/problem+json"
ERROR_TYPE_BASE = "https://errors.hotline400.example/"

# How long clients are told to wait after a 503; main.py sets it from ApiSettings.
RETRY_AFTER_SECONDS = 5


class ApiError(Exception):
    status = 500
    code = "internal_error"
    title = "Internal error"

    def __init__(
        self,
        detail: str | None = None,
        *,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.errors = errors
        self.headers = headers
        self.extra = extra or {}
        if code is not None:
            self.code = code


class BadRequest(ApiError):
    status, code, title = 400, "bad_request", "Bad request"


class NotFound(ApiError):
    status, code, title = 404, "not_found", "Not found"


class Unauthorized(ApiError):
    status, code, title = 401, "unauthorized", "Missing or invalid API key"

    def __init__(self, detail: str | None = None, **kw: Any) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": 'Bearer realm="hotline400"'}, **kw)


class Forbidden(ApiError):
    status, code, title = 403, "forbidden", "This role may not do that"


class Conflict(ApiError):
    status, code, title = 409, "conflict", "Conflict"


class InvalidInput(ApiError):
    status, code, title = 422, "invalid_input", "Invalid input"


class PayloadTooLarge(ApiError):
    status, code, title = 413, "payload_too_large", "Payload too large"


class UnsupportedMediaType(ApiError):
    status, code, title = 415, "unsupported_media_type", "Unsupported media type"


class ServiceUnavailable(ApiError):
    status, code, title = 503, "service_unavailable", "A backing service is unavailable"

    def __init__(self, detail: str | None = None, *, retry_after: int | None = None, **kw: Any) -> None:
        seconds = retry_after if retry_after is not None else RETRY_AFTER_SECONDS
        super().__init__(detail, headers={"Retry-After": str(seconds)}, **kw)


def field_error(field: str, code: str, message: str) -> dict[str, str]:
    return {"field": field, "code": code, "message": message}


INVALID_CHOICE = "invalid_choice"


def choice_error(field: str, value: Any, allowed: Sequence[str]) -> dict[str, str]:
    """A value outside a fixed set: every such parameter and field is reported in this one shape."""
    return field_error(field, INVALID_CHOICE, f"Unknown value {value!r}: use one of {', '.join(allowed)}.")


def invalid_choices(field: str, values: Sequence[Any] | Any, allowed: Sequence[str]) -> list[dict[str, str]]:
    """``choice_error`` for each of ``values`` (one value, or a repeated query
    parameter) that is not in ``allowed``."""
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    return [choice_error(field, v, allowed) for v in values if v not in allowed]


# --------------------------------------------------------------------------
# Models, for the OpenAPI document
# --------------------------------------------------------------------------


class FieldErrorOut(BaseModel):
    field: str = Field(description="Dotted/indexed path of the field at fault; empty for the whole body.")
    code: str = Field(description="Stable machine-readable reason.")
    message: str = Field(description="What is wrong and how to fix it.")


class Problem(BaseModel):
    """RFC 9457 problem details, with a stable ``code`` and the fields at fault."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "example": {
                "type": ERROR_TYPE_BASE + "invalid_input",
                "title": "Invalid input",
                "status": 422,
                "detail": "The request has invalid fields",
                "code": "invalid_input",
                "instance": "/v1/applications",
                "errors": [
                    {
                        "field": "credit_code",
                        "code": "invalid_check_digit",
                        "message": "The last character does not match the first 17 (check character).",
                    }
                ],
                "request_id": "4f1c0a0e6f7b4c55a1f1d7b8c2e9a001",
            }
        },
    )

    type: str
    title: str
    status: int
    detail: str
    code: str
    instance: str
    errors: list[FieldErrorOut] | None = None
    request_id: str | None = None


# --------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------


class ProblemResponse(JSONResponse):
    media_type = PROBLEM_JSON

    def render(self, content: Any) -> bytes:
        # ASCII-escaped: a problem can quote what the client sent, and a lone
        # surrogate in it must not turn the error response itself into a crash.
        return json.dumps(content, ensure_ascii=True, separators=(",", ":")).encode()


def problem(
    status: int,
    code: str,
    title: str,
    detail: str,
    instance: str,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": ERROR_TYPE_BASE + code,
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        "instance": instance,
    }
    if errors:
        body["errors"] = errors
    if extra:
        body.update(extra)
    rid = request_id_var.get()
    if rid:
        body["request_id"] = rid
    return ProblemResponse(body, status_code=status, headers=headers)


_PG_UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,  # refused, reset, DNS, and TimeoutError (acquire or command timeout)
    asyncpg.PostgresConnectionError,  # SQLSTATE class 08
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.exceptions.OperatorInterventionError,  # shutdown, statement cancelled
    asyncpg.InterfaceError,  # pool closing
)
_TEMPORAL_UNAVAILABLE_CODES = frozenset(
    {RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.RESOURCE_EXHAUSTED}
)


def unavailable_service(exc: BaseException) -> str | None:
    """Which backing service an exception says is unreachable, if any."""
    if isinstance(exc, ServiceUnavailable):
        return "unknown"
    if isinstance(exc, RPCError):
        return "temporal" if exc.status in _TEMPORAL_UNAVAILABLE_CODES else None
    if isinstance(exc, WorkflowUpdateRPCTimeoutOrCancelledError):
        return "temporal"
    if isinstance(exc, RuntimeError) and str(exc).startswith("Failed client connect"):
        return "temporal"  # the lazy Temporal client could not connect
    if isinstance(exc, _PG_UNAVAILABLE):
        return "postgres"
    return None


def problem_for(exc: BaseException, instance: str) -> JSONResponse | None:
    """The problem response for an error we know how to describe, else None."""
    if isinstance(exc, ApiError):
        return problem(
            exc.status, exc.code, exc.title, exc.detail, instance, exc.errors, exc.headers, exc.extra
        )
    service = unavailable_service(exc)
    if service is not None:
        log.warning("backing service unavailable", extra={"service": service, "error": type(exc).__name__})
        what = {"postgres": "The database", "temporal": "The workflow engine"}.get(service, "A service")
        return problem(
            503,
            "service_unavailable",
            ServiceUnavailable.title,
            f"{what} is not reachable right now; retry after the indicated delay",
            instance,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            extra={"service": service},
        )
    return None


def _loc_to_field(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [p for p in loc if p not in ("body", "query", "path", "header")]
    out = ""
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            out += ("." if out else "") + str(p)
    return out or str(loc[0] if loc else "")


# Pydantic's errors for a value outside an Enum or a Literal; the allowed values
# are quoted in the error's context.
_CHOICE_ERRORS = frozenset({"enum", "literal_error"})
_QUOTED = re.compile(r"'((?:[^'\\]|\\.)*)'")


def _field_error(e: Mapping[str, Any]) -> dict[str, str]:
    loc = tuple(e.get("loc", ()))
    # A query parameter is named as such: the index of a repeated one means nothing to a client.
    field = str(loc[1]) if len(loc) > 1 and loc[0] == "query" else _loc_to_field(loc)
    if e.get("type") in _CHOICE_ERRORS:
        allowed = _QUOTED.findall(str(e.get("ctx", {}).get("expected", "")))
        if allowed:
            return choice_error(field, e.get("input"), allowed)
    return field_error(field, e.get("type", "invalid"), e.get("msg", ""))


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        response = problem_for(exc, request.url.path)
        assert response is not None
        return response

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [_field_error(e) for e in exc.errors()]
        return problem(
            422, "invalid_input", "Invalid input", "The request has invalid fields", request.url.path, errors
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed", 413: PayloadTooLarge.code}.get(
            exc.status_code, "http_error"
        )
        return problem(
            exc.status_code,
            code,
            str(exc.detail),
            str(exc.detail),
            request.url.path,
            headers=dict(exc.headers) if exc.headers else None,
        )

    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        response = problem_for(exc, request.url.path)
        if response is not None:
            return response
        log.exception("unhandled error", extra={"path": request.url.path})
        return problem(
            500, "internal_error", "Internal error", "An unexpected error occurred", request.url.path
        )

    # The unavailability classes get handlers of their own: a handler for plain
    # Exception runs in Starlette's ServerErrorMiddleware, which re-raises after
    # answering, and a 503 is an expected answer, not a crash.
    for cls in (
        *_PG_UNAVAILABLE,
        asyncpg.PostgresError,
        RPCError,
        WorkflowUpdateRPCTimeoutOrCancelledError,
        RuntimeError,
    ):
        app.add_exception_handler(cls, _unexpected)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _unexpected)  # type: ignore[arg-type]

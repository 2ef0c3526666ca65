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
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, NoReturn, TypeVar

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from temporalio.client import WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.service import RPCError, RPCStatusCode

from app.db import with_cli_connection
from app.logging_setup import request_id_var
from app.metrics import route_template
from app.settings import Settings

log = logging.getLogger("api")

PROBLEM_JSON = "application/problem+json"
ERROR_TYPE_BASE = "https://errors.hotline400.example/"

# How long clients are told to wait after a 503; main.py sets it from ApiSettings.
RETRY_AFTER_SECONDS = 5

# The most field errors one answer lists; how many more there were is said, not
# listed, so that a hostile body cannot make the error itself megabytes long.
MAX_LISTED_ERRORS = 50

# What an Idempotency-Key protects, per route that requires one: said when it is missing.
IDEMPOTENT_ROUTES = {
    "/v1/applications": ("a retried submission must not create a second application", "application"),
    "/v1/applications/{application_id}/payments": ("a retried payment must not be counted twice", "payment"),
}


def exit_with(command: str, exc: ApiError) -> NoReturn:
    """A command-line tool refusing input the way the API would, in one line."""
    details = "; ".join(f"{e['field']}: {e['message']}" for e in exc.errors or [])
    sys.exit(f"{command}: {exc.detail}{': ' + details if details else ''}")


def run_cli_action(
    settings: Settings, command: str, action: Callable[[asyncpg.Connection], Awaitable[T]]
) -> T:
    """``action`` on one connection for the command-line tool ``command``; a
    service's refusal ends the tool with the API's words (exit_with)."""
    try:
        return with_cli_connection(settings, command, action)
    except ApiError as exc:
        exit_with(command, exc)


def missing_idempotency_key(path_template: str) -> InvalidInput:
    why, per = IDEMPOTENT_ROUTES.get(
        path_template, ("a retried request must not be applied twice", "request")
    )
    return InvalidInput(
        f"Send an Idempotency-Key header: {why}",
        errors=[field_error("Idempotency-Key", "missing", f"Send a unique value (e.g. a UUID) per {per}.")],
    )


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


class TooManyRequests(ApiError):
    status, code, title = 429, "too_many_requests", "Too many requests"

    def __init__(self, detail: str | None = None, *, retry_after: int, **kw: Any) -> None:
        super().__init__(detail, headers={"Retry-After": str(max(1, retry_after))}, **kw)


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
    # Clients send JSON: true, not Python's True.
    shown = repr(value) if isinstance(value, str) else json.dumps(value, default=str)
    return field_error(field, INVALID_CHOICE, f"Unknown value {shown}: use one of {', '.join(allowed)}.")


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
    errors_omitted: int | None = Field(
        default=None, description=f"How many more errors there were than the {MAX_LISTED_ERRORS} listed."
    )
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


T = TypeVar("T")


def cap_errors(errors: Sequence[T]) -> tuple[list[T], int]:
    """The errors to list (at most ``MAX_LISTED_ERRORS``) and how many are left out."""
    return list(errors[:MAX_LISTED_ERRORS]), max(0, len(errors) - MAX_LISTED_ERRORS)


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
        listed, omitted = cap_errors(errors)
        body["errors"] = listed
        if omitted:
            body["errors_omitted"] = omitted
            body["detail"] = f"{detail} (the first {len(listed)} of {len(errors)} errors are listed)"
    if extra:
        body.update(extra)
    rid = request_id_var.get()
    if rid:
        body["request_id"] = rid
    return ProblemResponse(body, status_code=status, headers=headers)


# Every way the driver says "the connection cannot serve this right now": the
# server is down, starting or shutting down, the link broke mid-query, the pool
# is closing, or the protocol state of a connection was left broken by one of
# those (InternalClientError: "cannot switch to state 12"). A retry on a fresh
# connection is the remedy for each, so each is a 503 with Retry-After.
_PG_UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,  # refused, reset, DNS, and TimeoutError (acquire or command timeout)
    asyncpg.PostgresConnectionError,  # SQLSTATE class 08, and the link closed mid-operation
    asyncpg.CannotConnectNowError,  # 57P03: starting up or shutting down
    asyncpg.TooManyConnectionsError,
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.exceptions.OperatorInterventionError,  # shutdown, statement cancelled
    asyncpg.InterfaceError,  # pool closing, connection closed
    asyncpg.InternalClientError,  # protocol state broken by a fault (ProtocolError included)
)
# Interface errors that are about the arguments or the client, not the link:
# retrying them can never succeed, so they are not "unavailable".
_PG_NOT_A_FAULT: tuple[type[BaseException], ...] = (
    asyncpg.exceptions._base.DataError,  # an argument the driver cannot encode
    asyncpg.exceptions.ClientConfigurationError,
    asyncpg.exceptions.UnsupportedClientFeatureError,
    asyncpg.exceptions.UnsupportedServerFeatureError,
)
_TEMPORAL_UNAVAILABLE_CODES = frozenset(
    {RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.RESOURCE_EXHAUSTED}
)
# Every class whose exceptions may say a backing service is unreachable (which
# ones do, unavailable_service decides). They get handlers of their own, in the
# API and in the console: a handler for plain Exception runs in Starlette's
# ServerErrorMiddleware, which re-raises after answering, and a 503 is an
# expected answer, not a crash.
MAYBE_UNAVAILABLE: tuple[type[BaseException], ...] = (
    *_PG_UNAVAILABLE,
    asyncpg.PostgresError,
    RPCError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
    RuntimeError,
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
    if isinstance(exc, _PG_UNAVAILABLE) and not isinstance(exc, _PG_NOT_A_FAULT):
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


_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path. Starlette's own 405 names only
    the methods of the first route whose path matched, so GET /v1/api-keys and
    POST /v1/api-keys, two routes, would each deny the other. Asked of the routes
    themselves, method by method, so that it holds however routers are nested."""
    return [
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL
            for route in request.app.router.routes
        )
    ]


# Pydantic's errors for a value outside an Enum or a Literal; the allowed values
# are quoted in the error's context.
_CHOICE_ERRORS = frozenset({"enum", "literal_error"})
_QUOTED = re.compile(r"'((?:[^'\\]|\\.)*)'")


def _field_error(e: Mapping[str, Any]) -> dict[str, str]:
    loc = tuple(e.get("loc", ()))
    if e.get("type") == "json_invalid":
        # Its location is ("body", character offset): the body it is.
        return field_error("body", "json_invalid", e.get("msg", ""))
    # A query parameter is named as such: the index of a repeated one means nothing to a client.
    field = str(loc[1]) if len(loc) > 1 and loc[0] == "query" else _loc_to_field(loc)
    if e.get("type") in _CHOICE_ERRORS:
        allowed = _QUOTED.findall(str(e.get("ctx", {}).get("expected", "")))
        if allowed:
            return choice_error(field, e.get("input"), allowed)
    return field_error(field, e.get("type", "invalid"), e.get("msg", ""))


def validation_errors(exc: RequestValidationError) -> list[dict[str, str]]:
    """The fields at fault in a request FastAPI could not validate, as every error names them."""
    return [_field_error(e) for e in exc.errors()]


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        response = problem_for(exc, request.url.path)
        assert response is not None
        return response

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        raw = exc.errors()
        if [(e.get("type"), tuple(e.get("loc", ()))) for e in raw] == [
            ("missing", ("header", "Idempotency-Key"))
        ]:
            route = request.scope.get("route")
            missing = problem_for(missing_idempotency_key(route_template(route) or ""), request.url.path)
            assert missing is not None
            return missing
        errors = validation_errors(exc)
        return problem(
            422, "invalid_input", "Invalid input", "The request has invalid fields", request.url.path, errors
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:
            # FastAPI's only 400: a body it could not read (not UTF-8, nested too
            # deep, a broken multipart envelope). Invalid input like any other.
            return problem(
                422,
                InvalidInput.code,
                InvalidInput.title,
                "The body could not be read",
                request.url.path,
                [field_error("body", "unreadable_body", f"{exc.detail}: send well-formed JSON or a form.")],
            )
        headers = dict(exc.headers) if exc.headers else None
        if exc.status_code == 405:
            headers = {**(headers or {}), "Allow": ", ".join(allowed_methods(request))}
        code = {404: "not_found", 405: "method_not_allowed", 413: PayloadTooLarge.code}.get(
            exc.status_code, "http_error"
        )
        return problem(
            exc.status_code, code, str(exc.detail), str(exc.detail), request.url.path, headers=headers
        )

    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        response = problem_for(exc, request.url.path)
        if response is not None:
            return response
        log.exception("unhandled error", extra={"path": request.url.path})
        return problem(
            500, "internal_error", "Internal error", "An unexpected error occurred", request.url.path
        )

    for cls in MAYBE_UNAVAILABLE:
        app.add_exception_handler(cls, _unexpected)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _unexpected)  # type: ignore[arg-type]

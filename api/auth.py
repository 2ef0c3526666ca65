"""API keys: token format, hashing, verification and the role check.

A token reads ``h400_<id>_<secret>``: the id is public (logs, CLI, audit), the
secret is 160 random bits. Only HMAC-SHA256(pepper, token) is stored, and the
comparison is constant-time.

Authentication runs in a middleware, before FastAPI parses the body, so a caller
without a valid key gets 401 whatever it sent; the role is checked per route by
the ``allow(action)`` dependency (403), from the one table in api.permissions.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

import asyncpg
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.types import ASGIApp, Receive, Scope, Send

from api.db import connection
from api.errors import Forbidden, TooManyRequests, Unauthorized, problem_for
from api.permissions import PERMISSIONS, Action
from api.permissions import Role as Role  # noqa: PLC0414 - re-exported: callers import Role from here
from api.repositories import api_keys
from api.throttle import FailureWindow

TOKEN_PREFIX = "h400"  # noqa: S105 - the public prefix of every token, not a secret
_TOKEN = re.compile(r"^h400_([a-z0-9]{12})_([a-z2-7]{32})$")
ORGANISATION_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: str
    role: Role
    organisation_id: str | None
    # "apikey" for an API caller, "staff" for someone signed in to the console.
    kind: str = "apikey"

    @property
    def actor_id(self) -> str:
        """How this caller is named in the audit trail."""
        return f"{self.kind}:{self.key_id}"

    def require_organisation(self) -> str:
        if self.organisation_id is None:  # the api_key table's CHECK makes this unreachable
            raise Forbidden("This key is not bound to an organisation")
        return self.organisation_id


def new_token() -> tuple[str, str]:
    """A fresh (key id, token) pair."""
    key_id = secrets.token_hex(6)
    secret = base64.b32encode(secrets.token_bytes(20)).decode().lower()
    return key_id, f"{TOKEN_PREFIX}_{key_id}_{secret}"


def parse_key_id(token: str) -> str | None:
    match = _TOKEN.fullmatch(token)
    return match.group(1) if match else None


def hash_token(pepper: str, token: str) -> bytes:
    return hmac.new(pepper.encode(), token.encode(), hashlib.sha256).digest()


@dataclass(frozen=True, slots=True)
class _Cached:
    secret_hash: bytes
    principal: Principal | None  # None: revoked
    expires_at: float | None  # Unix time
    fetched_at: float


# One answer for every key that does not authenticate, whether its id is unknown,
# its secret wrong, or it was revoked or has expired: which of those it is would
# tell a guesser what it has found.
NOT_VALID = "The API key is not valid"


class Authenticator:
    """Verifies tokens against the api_key table with a short-lived cache, and
    throttles failed attempts per key id and per client address (api.throttle).

    The cache keeps the row, not the verdict, so every request still checks its
    own secret; only the database round trip is saved.
    """

    def __init__(
        self,
        pepper: str,
        ttl_seconds: float,
        *,
        by_key: FailureWindow | None = None,
        by_address: FailureWindow | None = None,
    ) -> None:
        self._pepper = pepper
        self._ttl = ttl_seconds
        self._cache: dict[str, _Cached] = {}
        self._by_key = by_key or FailureWindow(10, 300)
        self._by_address = by_address or FailureWindow(30, 300)

    async def authenticate(
        self, pool: asyncpg.Pool, token: str | None, acquire_timeout: float, address: str = "unknown"
    ) -> Principal:
        self._refuse_throttled(self._by_address, address, "this address")
        if not token:
            # Not an attempt: no key at all is what every browser sends first.
            raise Unauthorized("Send the API key as 'Authorization: Bearer h400_...'")
        key_id = parse_key_id(token)
        if key_id is None:
            self._by_address.record(address)
            raise Unauthorized("The API key is malformed")
        self._refuse_throttled(self._by_key, key_id, "this key")
        entry = self._cache.get(key_id)
        if entry is None or time.monotonic() - entry.fetched_at > self._ttl:
            entry = await self._load(pool, key_id, acquire_timeout)
        if (
            entry is None
            or not hmac.compare_digest(entry.secret_hash, hash_token(self._pepper, token))
            or entry.principal is None
            or (entry.expires_at is not None and entry.expires_at <= time.time())
        ):
            self._by_address.record(address)
            self._by_key.record(key_id)
            raise Unauthorized(NOT_VALID)
        return entry.principal

    @staticmethod
    def _refuse_throttled(window: FailureWindow, subject: str, what: str) -> None:
        wait = window.retry_after(subject)
        if wait is not None:
            raise TooManyRequests(
                f"Too many failed authentications for {what}; retry after {wait} s", retry_after=wait
            )

    async def _load(self, pool: asyncpg.Pool, key_id: str, acquire_timeout: float) -> _Cached | None:
        async with connection(pool, acquire_timeout) as conn:
            row = await api_keys.get(conn, key_id)
        if row is None:
            # Unknown ids are not cached: a flood of random ids must not grow memory.
            return None
        principal = (
            None
            if row["revoked_at"] is not None
            else Principal(row["id"], Role(row["role"]), row["organisation_id"])
        )
        expires_at = row["expires_at"].timestamp() if row["expires_at"] is not None else None
        entry = _Cached(bytes(row["secret_hash"]), principal, expires_at, time.monotonic())
        self._cache[key_id] = entry
        return entry

    def forget(self, key_id: str) -> None:
        self._cache.pop(key_id, None)


def _bearer(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, credentials = bytes(value).decode("latin-1").partition(" ")
            if scheme.lower() == "bearer":
                return credentials.strip()
            return None
    return None


class AuthenticationMiddleware:
    """Resolves the caller's principal for every protected path, or answers 401."""

    def __init__(self, app: ASGIApp, is_public: Callable[[str], bool]) -> None:
        self.app = app
        self.is_public = is_public

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.is_public(scope["path"]) or scope["method"] == "OPTIONS":
            await self.app(scope, receive, send)
            return
        state = scope["app"].state
        try:
            client = scope.get("client")
            principal = await state.authenticator.authenticate(
                state.pool,
                _bearer(scope),
                state.api_settings.pool_acquire_timeout,
                client[0] if client else "unknown",
            )
        except Exception as exc:  # ApiError and unavailability become their problem response
            response = problem_for(exc, scope["path"])
            if response is None:
                raise
            await response(scope, receive, send)
            return
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)


# Declared for OpenAPI (the "Authorize" button); verification is the middleware's.
bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    bearerFormat="h400_<id>_<secret>",
    description="An API key created with `python -m app apikey create`. Each key has one role.",
)


def allow(action: Action) -> Any:
    """Dependency: the caller's principal, if the authorisation table
    (api.permissions) lets its role do ``action``; else 403."""
    roles = PERMISSIONS[action]
    allowed = frozenset(roles)

    async def check(
        request: Request,
        _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
    ) -> Principal:
        principal: Principal | None = getattr(request.state, "principal", None)
        if principal is None:  # a protected route mounted on a public path
            raise Unauthorized()
        if principal.role not in allowed:
            raise Forbidden(
                f"The {principal.role} role may not do this; allowed: " + ", ".join(r.value for r in roles)
            )
        return principal

    check.roles = roles  # type: ignore[attr-defined]  # read by the OpenAPI builder
    return Depends(check)


AuthCheck = Callable[..., Awaitable[Principal]]

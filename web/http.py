"""Who is asking: the session cookie, the authorisation table, the CSRF token.

Every console route depends on ``require(action)``: it resolves the session
from its cookie (signing in again when there is none or it has been idle too
long), refuses a role the table (api.permissions) does not allow, and for any
request that changes something checks the session's CSRF token, sent by htmx
in the ``X-CSRF-Token`` header or by a plain form in ``csrf_token``.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, Request

from api.auth import Principal
from api.db import Context
from api.errors import Forbidden
from api.permissions import Action, may
from api.services.workflow import WorkflowGateway
from web.config import ConsoleSettings
from web.services import staff as staff_service
from web.services.hashing import PasswordHashing

SESSION_COOKIE = "h400_console"
LOGIN_CSRF_COOKIE = "h400_login_csrf"
LANGUAGE_COOKIE = "h400_lang"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class SignInRequired(Exception):
    """No live session: the console sends the browser to the sign-in page."""


class CsrfRefused(Exception):
    """A request that changes something came without this session's CSRF token."""


@dataclass(frozen=True, slots=True)
class Staff:
    """The signed-in member of staff, as the API's services know a caller."""

    session: staff_service.Session

    @property
    def principal(self) -> Principal:
        return Principal(self.session.staff_id, self.session.role, None, kind="staff")

    @property
    def actor_id(self) -> str:
        return self.principal.actor_id

    def can(self, action: Action | str) -> bool:
        return may(self.session.role, Action(action))


def parent_state(request: Request) -> Any:
    return request.app.state.parent.state


def context(request: Request) -> Context:
    ctx: Context = parent_state(request).ctx
    return ctx


def gateway(request: Request) -> WorkflowGateway:
    gw: WorkflowGateway = parent_state(request).gateway
    return gw


def available_gateway(request: Request) -> WorkflowGateway:
    """The gateway, for an action that needs a workflow to answer: 503 with
    Retry-After at once while Temporal is down or no worker polls, as the API's
    routes answer (api.routers._common.get_gateway)."""
    gw = gateway(request)
    gw.require_available()
    return gw


def password_hashing(request: Request) -> PasswordHashing:
    hashing: PasswordHashing = request.app.state.password_hashing
    return hashing


def console_settings(request: Request) -> ConsoleSettings:
    settings: ConsoleSettings = request.app.state.settings
    return settings


def cookie_secure(request: Request) -> bool:
    configured = console_settings(request).cookie_secure
    if configured is not None:
        return configured
    return bool(parent_state(request).settings.environment != "development")


async def current_staff(request: Request) -> Staff | None:
    cached: Staff | None = getattr(request.state, "staff", None)
    if cached is not None:
        return cached
    token = request.cookies.get(SESSION_COOKIE)
    if not token or len(token) > 128:
        return None
    ctx = context(request)
    async with ctx.connection() as conn:
        found = await staff_service.session(conn, token, console_settings(request).idle_timeout_seconds)
    if found is None:
        return None
    staff = Staff(found)
    request.state.staff = staff
    return staff


async def _sent_csrf(request: Request) -> str:
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()
        value = form.get(CSRF_FIELD)
        return value if isinstance(value, str) else ""
    return ""


def tokens_match(expected: str, sent: str) -> bool:
    return bool(expected) and hmac.compare_digest(expected.encode(), sent.encode())


def require(action: Action) -> Any:
    """Dependency: the signed-in staff member, if their role may do ``action``."""

    async def check(request: Request) -> Staff:
        staff = await current_staff(request)
        if staff is None:
            raise SignInRequired()
        if request.method not in _SAFE_METHODS and not tokens_match(
            staff.session.csrf_token, await _sent_csrf(request)
        ):
            raise CsrfRefused()
        if not staff.can(action):
            raise Forbidden(f"The {staff.session.role} role may not do this")
        return staff

    return Depends(check)

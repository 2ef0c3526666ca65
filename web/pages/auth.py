"""Signing in and out, and the language switch.

Sign-in is protected against cross-site posting by a double-submit token (the
form carries the value of a cookie set with the form), limited per client
address, and locks an account after repeated failures (web.services.staff).
Each sign-in opens a new session, so a session id planted before sign-in is
worthless after it.
"""

from __future__ import annotations

import secrets
import time
from collections import deque
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from api.permissions import Action, may
from web import views
from web.http import (
    LANGUAGE_COOKIE,
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    Staff,
    console_settings,
    context,
    cookie_secure,
    current_staff,
    require,
    tokens_match,
)
from web.i18n import LANGUAGES
from web.services import staff as staff_service

router = APIRouter()


class AttemptLimiter:
    """Sign-in attempts per client address in a sliding minute (per process)."""

    def __init__(self) -> None:
        self._attempts: dict[str, deque[float]] = {}

    def allow(self, key: str, per_minute: int) -> bool:
        now = time.monotonic()
        window = self._attempts.setdefault(key, deque())
        while window and now - window[0] > 60:
            window.popleft()
        if len(window) >= per_minute:
            return False
        window.append(now)
        if len(self._attempts) > 10_000:  # forget idle addresses rather than grow without bound
            for stale in [k for k, v in self._attempts.items() if not v or now - v[-1] > 60]:
                del self._attempts[stale]
        return True


def _limiter(request: Request) -> AttemptLimiter:
    state = request.app.state
    if not hasattr(state, "sign_in_limiter"):
        state.sign_in_limiter = AttemptLimiter()
    limiter: AttemptLimiter = state.sign_in_limiter
    return limiter


def _local(path: str | None, fallback: str) -> str:
    """Only a path on this site: never an open redirect."""
    if path and path.startswith("/console") and not path.startswith("//") and "\\" not in path:
        return path
    return fallback


def _login_page(request: Request, error: str | None = None, status: int = 200) -> Response:
    token = secrets.token_urlsafe(32)
    response = views.render(request, "login.html", {"login_csrf": token, "error": error}, status_code=status)
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        httponly=True,
        secure=cookie_secure(request),
        samesite="strict",
        path="/console/login",
    )
    return response


@router.get("/login")
async def login_form(request: Request) -> Response:
    if await current_staff(request) is not None:
        return RedirectResponse(views.console_url(request, "/queue"), status_code=303)
    return _login_page(request)


@router.post("/login")
async def login(
    request: Request,
    username: Annotated[str, Form(max_length=64)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    csrf_token: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    _ = views.gettext(request)
    if not tokens_match(request.cookies.get(LOGIN_CSRF_COOKIE, ""), csrf_token):
        return _login_page(request, _("The form has expired; sign in again."), 403)
    settings = console_settings(request)
    client = request.client.host if request.client else "unknown"
    if not _limiter(request).allow(client, settings.sign_ins_per_minute):
        return _login_page(request, _("Too many attempts; wait a minute and try again."), 429)
    ctx = context(request)
    try:
        async with ctx.connection() as conn:
            account = await staff_service.sign_in(
                conn,
                username,
                password,
                max_failures=settings.max_failed_sign_ins,
                lockout=timedelta(seconds=settings.lockout_seconds),
            )
            old = request.cookies.get(SESSION_COOKIE)
            if old and len(old) <= 128:
                await staff_service.close_session(conn, old)  # rotated: never reuse a session id
            token = await staff_service.open_session(conn, account.id)
    except staff_service.SignInRefused as refused:
        message = (
            _("Too many failed sign-ins: this account is locked for a while.")
            if refused.locked_until
            else _("Wrong username or password.")
        )
        return _login_page(request, message, 401)
    landing = "/queue" if may(account.role, Action.REVIEW) else "/dashboard"
    response = RedirectResponse(views.console_url(request, landing), status_code=303)
    response.set_cookie(
        SESSION_COOKIE, token, httponly=True, secure=cookie_secure(request), samesite="lax", path="/console"
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/console/login")
    return response


@router.post("/logout")
async def logout(request: Request, staff: Annotated[Staff, require(Action.USE_CONSOLE)]) -> Response:
    token = request.cookies.get(SESSION_COOKIE, "")
    async with context(request).connection() as conn:
        await staff_service.close_session(conn, token)
    response = RedirectResponse(views.console_url(request, "/login"), status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/console")
    return response


@router.get("/language")
async def switch_language(request: Request, lang: str = "", next: str = "") -> Response:
    response = RedirectResponse(_local(next, views.console_url(request, "/queue")), status_code=303)
    if lang in LANGUAGES:
        response.set_cookie(
            LANGUAGE_COOKIE,
            lang,
            max_age=365 * 24 * 3600,
            secure=cookie_secure(request),
            samesite="lax",
            path="/console",
        )
    return response

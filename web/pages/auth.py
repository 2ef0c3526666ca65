"""Signing in and out, and the language switch.

Sign-in is protected against cross-site posting by a double-submit token (the
form carries the value of a cookie set with the form), limited per client
address (the API's throttle, api.throttle, answering 429 with Retry-After), and
locks an account after repeated failures (web.services.staff).
Each sign-in opens a new session, so a session id planted before sign-in is
worthless after it.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from api.errors import TooManyRequests
from api.permissions import Action, may
from api.throttle import FailureWindow
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
    password_hashing,
    require,
    tokens_match,
)
from web.i18n import LANGUAGES
from web.services import staff as staff_service

router = APIRouter()


def _throttle(request: Request) -> FailureWindow:
    """Sign-in attempts per client address in a sliding minute (per process)."""
    throttle: FailureWindow = request.app.state.sign_in_throttle
    return throttle


def _local(path: str | None, fallback: str) -> str:
    """Only a path on this site: never an open redirect."""
    if path and path.startswith("/console") and not path.startswith("//") and "\\" not in path:
        return path
    return fallback


def _login_page(
    request: Request, error: str | None = None, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    token = secrets.token_urlsafe(32)
    response = views.render(
        request, "login.html", {"login_csrf": token, "error": error}, status_code=status, headers=headers
    )
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
    throttle = _throttle(request)
    wait = throttle.retry_after(client)
    if wait is not None:
        return _login_page(
            request, _("Too many attempts; wait a minute and try again."), 429, {"Retry-After": str(wait)}
        )
    throttle.record(client)
    ctx = context(request)
    try:
        account = await staff_service.sign_in(
            ctx.connection,
            username,
            password,
            max_failures=settings.max_failed_sign_ins,
            lockout=timedelta(seconds=settings.lockout_seconds),
            hashing=password_hashing(request),
        )
    except staff_service.SignInRefused as refused:
        message = (
            _("Too many failed sign-ins: this account is locked for a while.")
            if refused.locked_until
            else _("Wrong username or password.")
        )
        return _login_page(request, message, 401)
    except TooManyRequests as busy:  # every password-hashing slot taken for a while
        return _login_page(request, _("Too many sign-ins at once; try again in a moment."), 429, busy.headers)
    async with ctx.connection() as conn:
        old = request.cookies.get(SESSION_COOKIE)
        if old and len(old) <= 128:
            await staff_service.close_session(conn, old)  # rotated: never reuse a session id
        token = await staff_service.open_session(conn, account.id)
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

"""The console over HTTP without a browser: the whole application (API and
console) on httpx's ASGI transport, with staff sessions opened directly.

For what a browser cannot show: headers, status codes, the event loop's lag,
and every route for every role."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg
import httpx
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from api.config import ApiSettings
from api.main import create_app
from app.settings import Settings
from web.config import ConsoleSettings
from web.http import CSRF_HEADER, LOGIN_CSRF_COOKIE, SESSION_COOKIE
from web.services import staff as staff_service

PASSWORD = "a long test password"


def quiet_console(**overrides: object) -> ConsoleSettings:
    """Console settings for tests: every request comes from one address, so the
    per-address sign-in limit is out of the way unless a test sets it."""
    return ConsoleSettings(_env_file=None, **{"sign_ins_per_minute": 10_000, **overrides})  # type: ignore[call-arg, arg-type]


@asynccontextmanager
async def console_app(
    settings: Settings, api_settings: ApiSettings, console_settings: ConsoleSettings | None = None
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = create_app(settings, api_settings, console_settings or quiet_console())
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client,
    ):
        yield app, client


@dataclass(frozen=True)
class Account:
    id: str
    username: str
    role: str


async def new_account(pool: asyncpg.Pool, role: str, password: str = PASSWORD) -> Account:
    username = f"{role}-{uuid.uuid4().hex[:10]}"
    async with pool.acquire() as conn:
        account = await staff_service.create_account(
            conn,
            username=username,
            display_name=f"Test {role}",
            role=role,
            password=password,
            created_by="tests",
        )
    return Account(account.id, username, role)


@dataclass(frozen=True)
class Signed:
    """A staff session: its cookie and CSRF token (sent by hand: the session
    cookie is Secure outside development, and the test transport is plain HTTP)."""

    token: str
    csrf: str

    def headers(self, *, csrf: bool = True, htmx: bool = False) -> dict[str, str]:
        headers = {"Cookie": f"{SESSION_COOKIE}={self.token}"}
        if csrf:
            headers[CSRF_HEADER] = self.csrf
        if htmx:
            headers["HX-Request"] = "true"
        return headers


async def signed_in(pool: asyncpg.Pool, account: Account) -> Signed:
    async with pool.acquire() as conn:
        token = await staff_service.open_session(conn, account.id)
        session = await staff_service.session(conn, token, idle_timeout=3600)
    assert session is not None
    return Signed(token, session.csrf_token)


async def post_login(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    """The sign-in form as a browser posts it (with its double-submit token)."""
    token = uuid.uuid4().hex
    return await client.post(
        "/console/login",
        data={"username": username, "password": password, "csrf_token": token},
        headers={"Cookie": f"{LOGIN_CSRF_COOKIE}={token}"},
    )

"""Every console route, for every role and signed out, answers as the one
authorisation table (api/permissions.py) says; every console POST that changes
something is refused without the session's CSRF token.

The routes are read from the console application itself, so a route added
without an entry here fails the walk until someone says which action it is."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from starlette.routing import Mount
from temporalio.worker import Worker

from api.config import ApiSettings
from api.permissions import Action, Role, may
from app.settings import Settings
from tests.web.console_http import Account, console_app, new_account, quiet_console, signed_in
from web.http import LOGIN_CSRF_COOKIE

APP = "app_" + "0" * 26  # well formed, and no such application
DOC = "doc_" + "0" * 26
ENDPOINT = "whe_" + "0" * 26
DELIVERY = "msg_" + "0" * 32
NUMBER = "4000000000"
PUBLIC = None

# (method, route as the console declares it) -> [(path to ask, the action it needs)].
ROUTES: dict[tuple[str, str], list[tuple[str, Action | None]]] = {
    ("GET", "/login"): [("/login", PUBLIC)],
    ("POST", "/login"): [("/login", PUBLIC)],
    ("POST", "/logout"): [("/logout", Action.USE_CONSOLE)],
    ("GET", "/language"): [("/language?lang=en", PUBLIC)],
    ("GET", "/queue"): [("/queue", Action.REVIEW)],
    ("GET", "/queue/rows"): [("/queue/rows", Action.REVIEW)],
    ("POST", "/applications/{application_id}/claim"): [(f"/applications/{APP}/claim", Action.REVIEW)],
    ("POST", "/applications/{application_id}/unclaim"): [(f"/applications/{APP}/unclaim", Action.REVIEW)],
    ("GET", "/applications/{application_id}"): [(f"/applications/{APP}", Action.READ_APPLICATION)],
    ("GET", "/applications/{application_id}/claim-panel"): [
        (f"/applications/{APP}/claim-panel", Action.READ_APPLICATION)
    ],
    ("POST", "/applications/{application_id}/decision"): [(f"/applications/{APP}/decision", Action.DECIDE)],
    ("POST", "/applications/{application_id}/verification"): [
        (f"/applications/{APP}/verification", Action.VERIFY)
    ],
    ("POST", "/applications/{application_id}/reveal"): [
        (f"/applications/{APP}/reveal", Action.REVEAL_PERSONAL_DATA)
    ],
    ("GET", "/documents/{document_id}/content"): [(f"/documents/{DOC}/content", Action.READ_DOCUMENT)],
    ("GET", "/numbers"): [("/numbers", Action.VIEW_DASHBOARD)],
    ("GET", "/numbers/{application_id}"): [(f"/numbers/{APP}", Action.VIEW_DASHBOARD)],
    ("POST", "/numbers/{application_id}/details-changes"): [
        (f"/numbers/{APP}/details-changes", Action.REPORT_DETAILS_CHANGE)
    ],
    ("POST", "/numbers/{application_id}/{operation}"): [
        (f"/numbers/{APP}/suspension", Action.SUSPEND_RESUME),
        (f"/numbers/{APP}/resumption", Action.SUSPEND_RESUME),
        (f"/numbers/{APP}/realname-confirmation", Action.CONFIRM_REALNAME),
        (f"/numbers/{APP}/termination", Action.TERMINATE),
    ],
    ("GET", "/dashboard"): [("/dashboard", Action.VIEW_DASHBOARD)],
    ("GET", "/dashboard/figures"): [("/dashboard/figures", Action.VIEW_DASHBOARD)],
    ("GET", "/inventory"): [("/inventory", Action.SEARCH_NUMBERS)],
    ("GET", "/inventory/{number}"): [(f"/inventory/{NUMBER}", Action.SEARCH_NUMBERS)],
    ("GET", "/staff"): [("/staff", Action.MANAGE_STAFF)],
    ("POST", "/staff"): [("/staff", Action.MANAGE_STAFF)],
    ("GET", "/webhooks"): [("/webhooks", Action.MANAGE_WEBHOOKS)],
    ("GET", "/webhooks/{endpoint_id}"): [(f"/webhooks/{ENDPOINT}", Action.MANAGE_WEBHOOKS)],
    ("POST", "/webhooks/{endpoint_id}/deliveries/{delivery_id}/redeliver"): [
        (f"/webhooks/{ENDPOINT}/deliveries/{DELIVERY}/redeliver", Action.MANAGE_WEBHOOKS)
    ],
    ("GET", "/live"): [("/live", Action.USE_CONSOLE)],
}
STAFF_ROLES = (Role.OPERATOR, Role.ADMIN, Role.VIEWER)


@pytest.fixture(scope="module")
async def walked(
    stack_settings: Settings, api_settings: ApiSettings, api_worker: Worker
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The application with its workers polling (else an action is 503 before it is 404)."""
    short = api_settings.model_copy(update={"sse_max_stream_seconds": 0.3})
    async with console_app(stack_settings, short, quiet_console(default_language="en")) as served:
        yield served


@pytest.fixture(scope="module")
async def staff(pool: asyncpg.Pool) -> dict[Role, Account]:
    return {role: await new_account(pool, role.value) for role in STAFF_ROLES}


def console_routes(app: FastAPI) -> set[tuple[str, str]]:
    console = next(r.app for r in app.routes if isinstance(r, Mount) and r.path == "/console")
    assert isinstance(console, FastAPI)
    paths: dict[str, dict[str, Any]] = console.openapi()["paths"]
    return {(method.upper(), path) for path, operations in paths.items() for method in operations}


def signs_in(response: httpx.Response) -> bool:
    """An htmx request without a session is told to go and sign in."""
    return response.status_code == 401 and response.headers.get("hx-redirect", "").endswith("/console/login")


def login_form(cookie: str = "") -> tuple[dict[str, str], dict[str, str]]:
    """The sign-in form's double-submit token (the form field and its cookie)."""
    token = "walk-token"
    cookies = "; ".join(filter(None, [cookie, f"{LOGIN_CSRF_COOKIE}={token}"]))
    return {"csrf_token": token}, {"Cookie": cookies}


async def test_every_route_answers_each_role_as_the_authorisation_table_says(
    walked: tuple[FastAPI, httpx.AsyncClient], pool: asyncpg.Pool, staff: dict[Role, Account]
) -> None:
    app, client = walked
    assert console_routes(app) == set(ROUTES), "a console route is missing from ROUTES, or gone"
    wrong: list[str] = []
    for (method, _route), cases in ROUTES.items():
        for path, action in cases:
            # Signed out: the sign-in page, whatever the route (the public ones excepted).
            form, headers = login_form() if path == "/login" else ({}, {})
            response = await client.request(
                method, f"/console{path}", data=form or None, headers={"HX-Request": "true", **headers}
            )
            if action is not None and not signs_in(response):
                wrong.append(f"signed out {method} {path}: {response.status_code}")
            for role in STAFF_ROLES:
                session = await signed_in(pool, staff[role])  # fresh: /logout ends one
                headers = session.headers(htmx=True)
                if path == "/login":
                    form, login_cookie = login_form(headers["Cookie"])
                    headers.update(login_cookie)
                response = await client.request(method, f"/console{path}", data=form or None, headers=headers)
                allowed = action is None or may(role, action)
                refused = response.status_code == 403
                if response.status_code >= 500 or signs_in(response) or refused == allowed:
                    wrong.append(f"{role} {method} {path}: {response.status_code}, allowed={allowed}")
    assert not wrong, "\n".join(wrong)


async def test_every_state_changing_post_is_refused_without_the_csrf_token(
    walked: tuple[FastAPI, httpx.AsyncClient],
    pool: asyncpg.Pool,
    staff: dict[Role, Account],
    submitted: dict[str, Any],
) -> None:
    _, client = walked
    posts = [path for (method, _), cases in ROUTES.items() if method == "POST" for path, _action in cases]
    assert len(posts) >= 14
    wrong: list[str] = []
    for path in posts:
        for role in STAFF_ROLES:
            session = await signed_in(pool, staff[role])
            for htmx in (False, True):
                response = await client.post(
                    f"/console{path}", data={"reason": "x"}, headers=session.headers(csrf=False, htmx=htmx)
                )
                if response.status_code != 403 or ("expired" not in response.text):
                    wrong.append(f"{role} POST {path} (htmx={htmx}): {response.status_code}")
            # A token from another session is no token.
            other = await signed_in(pool, staff[role])
            stolen = {**session.headers(csrf=False), "X-CSRF-Token": other.csrf}
            response = await client.post(f"/console{path}", data={"reason": "x"}, headers=stolen)
            if response.status_code != 403:
                wrong.append(f"{role} POST {path} with another session's token: {response.status_code}")
    assert not wrong, "\n".join(wrong)

    # And nothing happened: a claim refused so leaves no claim.
    session = await signed_in(pool, staff[Role.OPERATOR])
    refused = await client.post(
        f"/console/applications/{submitted['id']}/claim", headers=session.headers(csrf=False)
    )
    claims = "SELECT count(*) FROM review_claim WHERE application_id = $1"
    assert refused.status_code == 403
    assert await pool.fetchval(claims, submitted["id"]) == 0
    accepted = await client.post(f"/console/applications/{submitted['id']}/claim", headers=session.headers())
    assert accepted.status_code == 303
    assert await pool.fetchval(claims, submitted["id"]) == 1

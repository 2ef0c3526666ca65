"""Failed authentications are throttled per key id and per client address; keys
may expire; and a key that does not work says so in one way, whatever the reason."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from api.auth import NOT_VALID, Role, parse_key_id
from api.config import ApiSettings
from api.main import create_app
from api.services import keys
from app.settings import PROJECT_ROOT, Settings
from tests.api.fixtures import Keys, make_key
from tests.api.test_errors import assert_problem

CATALOGUE = "/v1/requirements/catalogue"
Clients = Callable[[str], AbstractAsyncContextManager[httpx.AsyncClient]]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def wrong_secret(token: str) -> str:
    return token[:-4] + ("aaaa" if not token.endswith("aaaa") else "bbbb")


@pytest.fixture
async def throttled_app(stack_settings: Settings) -> AsyncIterator[FastAPI]:
    app = create_app(
        stack_settings,
        ApiSettings(  # type: ignore[call-arg]
            _env_file=None,
            auth_failures_per_key=3,
            auth_failures_per_address=5,
            auth_failure_window_seconds=1.5,
            auth_cache_seconds=0,
        ),
    )
    async with LifespanManager(app):
        yield app


@pytest.fixture
def from_address(throttled_app: FastAPI) -> Clients:
    @asynccontextmanager
    async def client(address: str) -> AsyncIterator[httpx.AsyncClient]:
        transport = httpx.ASGITransport(app=throttled_app, client=(address, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            yield c

    return client


async def test_repeated_bad_secrets_for_a_real_key_id_are_throttled(
    from_address: Clients, pool: asyncpg.Pool, settings: Settings
) -> None:
    """Bad secrets for a real key id were never throttled: guessing could go on
    for ever. Each try comes from another address, so only the key id counts."""
    token = await make_key(pool, settings, Role.VIEWER)
    for attempt in range(3):
        async with from_address(f"10.1.0.{attempt}") as c:
            assert (await c.get(CATALOGUE, headers=bearer(wrong_secret(token)))).status_code == 401
    async with from_address("10.1.0.99") as c:
        # Locked for the window, whatever secret comes: even the right one.
        for guess in (wrong_secret(token), token):
            response = await c.get(CATALOGUE, headers=bearer(guess))
            problem = assert_problem(response, 429, "too_many_requests")
            assert 1 <= int(response.headers["retry-after"]) <= 2, problem
        # Other keys are not affected.
        other = await make_key(pool, settings, Role.VIEWER)
        assert (await c.get(CATALOGUE, headers=bearer(other))).status_code == 200
        await asyncio.sleep(1.6)
        assert (await c.get(CATALOGUE, headers=bearer(token))).status_code == 200


async def test_an_address_trying_many_keys_is_throttled(
    from_address: Clients, pool: asyncpg.Pool, settings: Settings
) -> None:
    valid = await make_key(pool, settings, Role.VIEWER)
    async with from_address("10.2.0.1") as guesser:
        for i in range(5):
            made_up = f"h400_{i:012d}_{'a' * 32}" if i % 2 else "Bearer-less garbage"
            assert (await guesser.get(CATALOGUE, headers=bearer(made_up))).status_code == 401
        refused = await guesser.get(CATALOGUE, headers=bearer(valid))
        assert_problem(refused, 429, "too_many_requests")
        assert int(refused.headers["retry-after"]) >= 1
        # Once throttled, the address gets 429 whatever it sends, even no key at all.
        assert (await guesser.get(CATALOGUE)).status_code == 429
    async with from_address("10.2.0.2") as neighbour:
        assert (await neighbour.get(CATALOGUE, headers=bearer(valid))).status_code == 200
        assert (await neighbour.get(CATALOGUE)).status_code == 401


async def test_unknown_wrong_revoked_and_expired_keys_get_the_same_401(
    client: httpx.AsyncClient, pool: asyncpg.Pool, settings: Settings, api_keys: Keys
) -> None:
    """A revoked key was told it had been revoked: proof to a guesser that the
    key id exists and once worked."""
    revoked = await make_key(pool, settings, Role.VIEWER)
    async with pool.acquire() as conn:
        await keys.revoke_key(conn, parse_key_id(revoked) or "")
        created = await keys.create_key(
            conn,
            settings.api_key_pepper,
            role=Role.VIEWER,
            organisation_id=None,
            name="expires at once",
            created_by="tests",
            expires_at=datetime.now(UTC) + timedelta(seconds=1),
        )
    await asyncio.sleep(1.1)
    answers: dict[str, dict[str, Any]] = {}
    for name, token in (
        ("unknown", f"h400_{'0' * 12}_{'a' * 32}"),
        ("wrong secret", wrong_secret(api_keys["viewer"])),
        ("revoked", revoked),
        ("expired", created.token),
    ):
        response = await client.get(CATALOGUE, headers=bearer(token))
        body = assert_problem(response, 401, "unauthorized")
        answers[name] = {k: v for k, v in body.items() if k != "request_id"}
        assert response.headers["www-authenticate"] == 'Bearer realm="hotline400"'
    assert answers["unknown"]["detail"] == NOT_VALID
    assert all(answer == answers["unknown"] for answer in answers.values()), answers


async def test_a_key_stops_working_when_it_expires(client: httpx.AsyncClient, api_keys: Keys) -> None:
    admin = api_keys.headers("admin")
    soon = datetime.now(UTC) + timedelta(seconds=2)
    created = await client.post(
        "/v1/api-keys",
        json={"role": "viewer", "name": "short-lived", "expires_at": soon.isoformat()},
        headers=admin,
    )
    assert created.status_code == 201, created.text
    key = created.json()
    assert datetime.fromisoformat(key["expires_at"]) == soon
    assert (await client.get(CATALOGUE, headers=bearer(key["token"]))).status_code == 200
    listed = await client.get("/v1/api-keys", headers=admin)
    assert {k["id"]: k["expires_at"] for k in listed.json()["items"]}[key["id"]] is not None
    await asyncio.sleep(2.6)  # past the expiry and the test app's 0.5 s key cache
    assert (await client.get(CATALOGUE, headers=bearer(key["token"]))).status_code == 401

    now = datetime.now(UTC)
    for expires_at in (
        (now - timedelta(minutes=1)).isoformat(),
        (now + timedelta(days=3 * 365)).isoformat(),
        "2027-01-01T00:00:00",
        "9999-12-31T23:59:59+08:00",
    ):
        refused = await client.post(
            "/v1/api-keys", json={"role": "viewer", "name": "x", "expires_at": expires_at}, headers=admin
        )
        problem = assert_problem(refused, 422, "invalid_input")
        assert [e["field"] for e in problem["errors"]] == ["expires_at"], (expires_at, problem)


def _cli(pg_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": pg_url, "ENVIRONMENT": "test", "LOG_FORMAT": "console"}
    return subprocess.run(
        [sys.executable, "-m", "app", "apikey", *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_the_cli_creates_keys_that_expire(pg_url: str) -> None:
    org = f"org_exp_{os.urandom(3).hex()}"
    created = await asyncio.to_thread(
        _cli,
        pg_url,
        "create",
        "--role",
        "applicant",
        "--org",
        org,
        "--name",
        "ci",
        "--expires-in-days",
        "30",
        "--json",
    )
    assert created.returncode == 0, created.stderr
    expires_at = datetime.fromisoformat(json.loads(created.stdout)["expires_at"])
    assert timedelta(days=29) < expires_at - datetime.now(UTC) <= timedelta(days=30)
    listed = await asyncio.to_thread(_cli, pg_url, "list", "--org", org)
    assert f"until {expires_at:%Y-%m-%d}" in listed.stdout
    at = await asyncio.to_thread(
        _cli,
        pg_url,
        "create",
        "--role",
        "viewer",
        "--name",
        "ci",
        "--expires-at",
        "2020-01-01T00:00:00+08:00",
    )
    assert at.returncode != 0
    assert "expires_at" in at.stderr
    naive = await asyncio.to_thread(
        _cli, pg_url, "create", "--role", "viewer", "--name", "ci", "--expires-at", "2030-01-01T00:00:00"
    )
    assert naive.returncode != 0
    assert "UTC offset" in naive.stderr

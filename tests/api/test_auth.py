"""API keys: verification, revocation, the admin routes, the CLI and the dev demo keys."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import asyncpg
import httpx
import pytest

from api.auth import Role, hash_token, new_token, parse_key_id
from api.demo import DEMO_FILE, demo_keys_hook, ensure_demo_keys
from api.services import keys
from app.settings import PROJECT_ROOT, Settings
from tests.api.fixtures import Keys, make_key

CATALOGUE = "/v1/requirements/catalogue"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_token_format_and_hash() -> None:
    key_id, token = new_token()
    assert token.startswith(f"h400_{key_id}_")
    assert parse_key_id(token) == key_id
    assert parse_key_id(token + "x") is None
    assert parse_key_id("h400_short_secret") is None
    # The pepper is part of the hash: a stolen table is useless without it.
    assert hash_token("a", token) != hash_token("b", token)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer not-a-key"},
        {"Authorization": "Bearer h400_000000000000_" + "a" * 32},  # unknown id
    ],
    ids=["none", "basic", "empty", "malformed", "unknown"],
)
async def test_missing_or_invalid_key_is_401(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    response = await client.get(CATALOGUE, headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"] == 'Bearer realm="hotline400"'
    assert response.json()["code"] == "unauthorized"


async def test_right_id_wrong_secret_is_401(client: httpx.AsyncClient, api_keys: Keys) -> None:
    token = api_keys["viewer"]
    forged = token[:-4] + ("aaaa" if not token.endswith("aaaa") else "bbbb")
    assert (await client.get(CATALOGUE, headers=bearer(forged))).status_code == 401
    assert (await client.get(CATALOGUE, headers=bearer(token))).status_code == 200


async def test_401_comes_before_body_parsing(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/applications", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 401


async def test_admin_creates_lists_and_revokes_keys(client: httpx.AsyncClient, api_keys: Keys) -> None:
    admin = api_keys.headers("admin")
    org = f"org_{os.urandom(4).hex()}"
    created = await client.post(
        "/v1/api-keys", json={"role": "applicant", "organisation_id": org, "name": "Acme ERP"}, headers=admin
    )
    assert created.status_code == 201, created.text
    key = created.json()
    assert key["token"].startswith(f"h400_{key['id']}_")
    assert key["created_by"].startswith("apikey:")

    assert (await client.get(CATALOGUE, headers=bearer(key["token"]))).status_code == 200
    listed = await client.get("/v1/api-keys", params={"organisation_id": org}, headers=admin)
    assert [k["id"] for k in listed.json()["items"]] == [key["id"]]
    assert "token" not in listed.json()["items"][0]

    revoked = await client.delete(f"/v1/api-keys/{key['id']}", headers=admin)
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    # Revoked through this process: refused at once, not after the cache expires.
    assert (await client.get(CATALOGUE, headers=bearer(key["token"]))).status_code == 401
    assert (await client.delete(f"/v1/api-keys/{key['id']}", headers=admin)).status_code == 200
    assert (await client.get("/v1/api-keys", params={"organisation_id": org}, headers=admin)).json() == {
        "items": []
    }
    assert (await client.delete("/v1/api-keys/000000000000", headers=admin)).status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {"role": "applicant", "name": "no org"},
        {"role": "viewer", "organisation_id": "org_x", "name": "staff with org"},
        {"role": "applicant", "organisation_id": "has space", "name": "bad org"},
        {"role": "superuser", "name": "no such role"},
        {"role": "viewer", "name": ""},
    ],
)
async def test_invalid_key_requests_are_422(
    client: httpx.AsyncClient, api_keys: Keys, body: dict[str, str]
) -> None:
    response = await client.post("/v1/api-keys", json=body, headers=api_keys.headers("admin"))
    assert response.status_code == 422, response.text
    assert response.json()["errors"]


async def test_key_revoked_elsewhere_stops_working_within_the_cache_time(
    client: httpx.AsyncClient, pool: asyncpg.Pool, settings: Settings
) -> None:
    token = await make_key(pool, settings, Role.VIEWER)
    assert (await client.get(CATALOGUE, headers=bearer(token))).status_code == 200
    async with pool.acquire() as conn:  # as the CLI would, from another process
        await keys.revoke_key(conn, parse_key_id(token) or "")
    await asyncio.sleep(0.6)  # the test app's API_AUTH_CACHE_SECONDS is 0.5
    assert (await client.get(CATALOGUE, headers=bearer(token))).status_code == 401


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


async def test_cli_creates_lists_and_revokes(client: httpx.AsyncClient, pg_url: str) -> None:
    org = f"org_cli_{os.urandom(3).hex()}"
    created = await asyncio.to_thread(
        _cli, pg_url, "create", "--role", "applicant", "--org", org, "--name", "cli test", "--json"
    )
    assert created.returncode == 0, created.stderr
    key = json.loads(created.stdout)
    assert key["organisation_id"] == org
    assert (await client.get(CATALOGUE, headers=bearer(key["token"]))).status_code == 200

    listed = await asyncio.to_thread(_cli, pg_url, "list", "--org", org)
    assert key["id"] in listed.stdout
    assert key["token"] not in listed.stdout

    revoked = await asyncio.to_thread(_cli, pg_url, "revoke", key["id"])
    assert revoked.returncode == 0, revoked.stderr
    await asyncio.sleep(0.6)
    assert (await client.get(CATALOGUE, headers=bearer(key["token"]))).status_code == 401

    refused = await asyncio.to_thread(_cli, pg_url, "create", "--role", "applicant", "--name", "no org")
    assert refused.returncode != 0
    assert "organisation" in refused.stderr


async def test_demo_keys_are_stable_private_and_repaired(
    client: httpx.AsyncClient, settings: Settings, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    local = settings.model_copy(update={"data_dir": tmp_path})
    first = await ensure_demo_keys(local)
    assert set(first) == {r.value for r in Role}
    path = tmp_path / DEMO_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert await ensure_demo_keys(local) == first  # a restart reuses them

    for role, token in first.items():
        response = await client.get(CATALOGUE, headers=bearer(token))
        assert response.status_code == 200, role

    async with pool.acquire() as conn:
        await keys.revoke_key(conn, parse_key_id(first["viewer"]) or "")
    repaired = await ensure_demo_keys(local)
    assert repaired["viewer"] != first["viewer"]
    assert {k: v for k, v in repaired.items() if k != "viewer"} == {
        k: v for k, v in first.items() if k != "viewer"
    }

    lines = await asyncio.to_thread(demo_keys_hook, local)
    assert any(repaired["admin"] in line for line in lines)

"""Schemathesis against the API, served over HTTP by uvicorn: once with each
role's key and once without a key, every check on, bounded examples per
operation (tests/api/schemathesis.toml). The suite fails on any 5xx, any answer
the OpenAPI document does not describe, and any schema violation.

The app runs in this test's event loop, beside the session's worker, so
registrations that schemathesis submits or decides run their real workflow.
``SCHEMATHESIS_SEED`` replays another seed (the report names the one used), and
``SCHEMATHESIS_MAX_EXAMPLES`` explores further than the suite's bounded run.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import uvicorn
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from api.auth import Role
from api.config import ApiSettings
from api.main import create_app
from app.embedded import free_port
from app.settings import Settings
from tests.api.fixtures import Keys, application_body, make_key, submit, upload
from tests.factories_inventory import add_fresh_numbers

CONFIG = Path(__file__).with_name("schemathesis.toml")
SEED = os.environ.get("SCHEMATHESIS_SEED", "20261201")
MORE = (
    ["--max-examples", os.environ["SCHEMATHESIS_MAX_EXAMPLES"]]
    if "SCHEMATHESIS_MAX_EXAMPLES" in os.environ
    else []
)
ROLES = ["applicant", "operator", "admin", "viewer", None]


@asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[str]:
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_config=None, access_log=False)
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@pytest.fixture(scope="module")
async def base_url(stack_settings: Settings) -> AsyncIterator[str]:
    api = ApiSettings(  # type: ignore[call-arg]
        _env_file=None,
        # Streams end by themselves after a moment: schemathesis reads each to its end.
        sse_max_stream_seconds=0.3,
        sse_poll_seconds=0.1,
        sse_ping_seconds=0.5,
        update_timeout_seconds=10,
        max_upload_bytes=64 * 1024,
        # Every request comes from 127.0.0.1, and the ignored-auth check sends bad keys on purpose.
        auth_failures_per_address=100_000,
        auth_failures_per_key=100_000,
    )
    app = create_app(stack_settings, api)
    async with LifespanManager(app), serving(app) as url:
        yield url


@pytest.fixture(scope="module")
async def resources(base_url: str, pool: asyncpg.Pool, settings: Settings, api_keys: Keys) -> dict[str, str]:
    """Real ids for the path parameters, owned by the applicant key's organisation."""
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        created = await submit(client, api_keys, await application_body(client, pool, api_keys["applicant"]))
        assert created.status_code == 201, created.text
        document = await upload(client, api_keys["applicant"], "business_licence")
    throwaway = await make_key(pool, settings, Role.VIEWER)
    return {
        "ST_APPLICATION_ID": created.json()["id"],
        "ST_DOCUMENT_ID": document["id"],
        "ST_NUMBER": (await add_fresh_numbers(pool, 1, prefix="4000"))[0],
        "ST_KEY_ID": throwaway.split("_")[1],
    }


async def _schemathesis(base_url: str, env: dict[str, str], workdir: Path, *args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--no-color",
        "--config-file",
        str(CONFIG),
        "run",
        f"{base_url}/v1/openapi.json",
        "--seed",
        SEED,
        *MORE,
        *args,
        env={**os.environ, **env},
        cwd=workdir,  # whatever it writes stays out of the checkout
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(errors="replace")


@pytest.mark.parametrize("role", ROLES, ids=lambda r: r or "no-key")
async def test_schemathesis_finds_nothing(
    base_url: str,
    resources: dict[str, str],
    api_keys: Keys,
    role: str | None,
    api_worker: Any,
    tmp_path: Path,
) -> None:
    headers = ["--header", f"Authorization: Bearer {api_keys[role]}"] if role else []
    code, report = await _schemathesis(base_url, resources, tmp_path, *headers)
    if code != 0:
        saved = tmp_path / "schemathesis.txt"
        saved.write_text(report)
        failures = report[report.find("=== FAILURES ===") :]
        pytest.fail(f"schemathesis as {role or 'no key'} (seed {SEED}, whole report in {saved}):\n{failures}")

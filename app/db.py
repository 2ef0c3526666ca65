"""PostgreSQL connection pool and migrations (plain SQL applied by dbmate)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import asyncpg

from app.embedded import dbmate_path
from app.settings import PROJECT_ROOT, Settings

T = TypeVar("T")

MIGRATIONS_DIR = PROJECT_ROOT / "migrations"


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
    await conn.set_type_codec("json", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def _no_session_state(conn: asyncpg.Connection) -> None:
    """What a connection needs before going back to the pool: nothing.

    asyncpg rolls back an open transaction either way; without this it also sends
    its reset query (advisory unlock, CLOSE ALL, UNLISTEN, RESET ALL), a round
    trip on every release, six per registration. Nothing that uses a pool leaves
    session state behind: settings are ``SET LOCAL`` (ended with their
    transaction) and no LISTEN or cursor outlives a transaction. The one user of
    session state, the numbers import (an advisory lock, a temporary table),
    runs on a connection of its own (activities/inventory_cli.py). Keep it that
    way, or reset here what you add."""


def asyncpg_dsn(url: str) -> str:
    """asyncpg does not understand dbmate's ``sslmode=disable`` spelled in all forms; keep it simple."""
    return url


async def create_pool(database_url: str, *, min_size: int = 2, max_size: int = 20) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        asyncpg_dsn(database_url),
        min_size=min_size,
        max_size=max_size,
        init=_init_connection,
        reset=_no_session_state,
        command_timeout=30,
    )
    assert pool is not None
    return pool


def _dbmate_url(url: str) -> str:
    if "sslmode=" in url:
        return url
    return url + ("&" if "?" in url else "?") + "sslmode=disable"


def run_dbmate(database_url: str, *args: str, migrations_dir: Path = MIGRATIONS_DIR) -> str:
    """Run dbmate against ``database_url``; returns its output, raises with it on failure."""
    env = {**os.environ, "DATABASE_URL": _dbmate_url(database_url)}
    result = subprocess.run(
        [
            str(dbmate_path()),
            "--migrations-dir",
            str(migrations_dir),
            "--no-dump-schema",
            "--wait",
            "--wait-timeout",
            "60s",
            *args,
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"dbmate {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
    return result.stdout


def migrate(database_url: str) -> str:
    return run_dbmate(database_url, "up")


async def ping(pool: asyncpg.Pool) -> Any:
    async with pool.acquire(timeout=2) as conn:
        return await conn.fetchval("SELECT 1", timeout=2)


def cli_database_url(settings: Settings, command: str) -> str:
    """The database a command-line tool works on: DATABASE_URL, or in development
    the embedded server of a running `python -m app dev` (./var), found on its port."""
    if settings.database_url:
        return settings.database_url
    if settings.environment == "development":
        from app.embedded import EmbeddedPostgres, port_open

        dev = EmbeddedPostgres(settings.data_dir / "postgres", settings.embedded_postgres_port)
        if port_open("127.0.0.1", dev.port):
            return dev.url
    sys.exit(
        f"{command}: set DATABASE_URL, or start the dev stack (`make dev`) and run this beside it "
        "with ENVIRONMENT=development"
    )


def with_cli_connection(
    settings: Settings, command: str, action: Callable[[asyncpg.Connection], Awaitable[T]]
) -> T:
    """Runs ``action`` on one connection of a pool of one (its connections decode
    jsonb as the services expect), for a command-line tool."""
    url = cli_database_url(settings, command)

    async def main() -> T:
        pool = await create_pool(url, min_size=1, max_size=1)
        try:
            async with pool.acquire() as conn:
                return await action(conn)
        finally:
            await pool.close()

    return asyncio.run(main())

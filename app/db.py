"""PostgreSQL connection pool and migrations (plain SQL applied by dbmate)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import asyncpg

from app.embedded import dbmate_path
from app.settings import PROJECT_ROOT

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

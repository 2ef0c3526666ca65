"""The embedded PostgreSQL is reached over its Unix socket, or over TCP when the
socket's path would not fit the kernel's limit (a deep data folder)."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path

import asyncpg

from app.embedded import EmbeddedPostgres, free_port


async def _client_address(url: str) -> str | None:
    conn = await asyncpg.connect(url)
    try:
        address = await conn.fetchval("SELECT inet_client_addr()::text")
        return str(address) if address is not None else None
    finally:
        await conn.close()


async def test_a_data_folder_too_deep_for_a_socket_is_served_over_tcp() -> None:
    base = Path(tempfile.mkdtemp(prefix="h400-deep-"))
    deep = base / ("d" * 60) / ("e" * 60)
    server = EmbeddedPostgres(deep, free_port(), database="deep")
    try:
        await asyncio.to_thread(server.start)  # it runs an event loop of its own
        assert server.url.startswith("postgres://postgres@127.0.0.1:")
        assert await _client_address(server.url) is not None, "over TCP"
    finally:
        await asyncio.to_thread(server.stop)
        shutil.rmtree(base, ignore_errors=True)


async def test_a_running_server_is_reached_over_its_socket(pg_url: str) -> None:
    # The suite's own server (tests/conftest.py), in a short temporary folder.
    assert "host=%2F" in pg_url
    assert await _client_address(pg_url) is None, "a Unix-socket connection has no client address"

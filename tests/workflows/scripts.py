"""What the scripts beside the workflow tests (``make_histories``, ``calendar_demo``)
run on: a migrated database of their own (with ``tests.conftest.suite_settings``)."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

from app.db import migrate
from app.embedded import EmbeddedPostgres, free_port


def on_throwaway_database(name: str, run: Callable[[str], Awaitable[object]]) -> None:
    """``run`` with the URL of a migrated database: TEST_DATABASE_URL, or else an
    embedded PostgreSQL in a temporary folder, deleted afterwards."""
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        migrate(url)
        asyncio.run(_awaited(run, url))
        return
    tmp = Path(tempfile.mkdtemp(prefix=f"h400-{name}-"))
    server = EmbeddedPostgres(tmp, free_port(), database=f"hotline400_{name.replace('-', '_')}")
    server.start()
    try:
        migrate(server.url)
        asyncio.run(_awaited(run, server.url))
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


async def _awaited(run: Callable[[str], Awaitable[object]], url: str) -> None:
    await run(url)

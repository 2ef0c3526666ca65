"""The session's API app behind a real HTTP server, for clients that are not
httpx's in-process transport: a browser, the temporal CLI."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import uvicorn
from fastapi import FastAPI

from app.embedded import free_port


@pytest.fixture
async def served(api_app: FastAPI) -> AsyncIterator[str]:
    """The base URL of the app, served on a free port for the test's duration."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(api_app, host="127.0.0.1", port=port, lifespan="off", log_config=None)
    )
    task = asyncio.create_task(server.serve())
    for _ in range(200):
        if server.started:
            break
        await asyncio.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task

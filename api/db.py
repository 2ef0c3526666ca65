"""What routes and services reach the outside world through: the pool, Temporal,
settings. Built once in the lifespan and handed to each route as one object."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field

import asyncpg
from fastapi import Request
from temporalio.client import Client

from activities.calendar import CalendarStore
from api.config import ApiSettings
from api.errors import ServiceUnavailable
from app.codec import EncryptionCodec
from app.settings import Settings


@asynccontextmanager
async def connection(pool: asyncpg.Pool, timeout: float) -> AsyncIterator[asyncpg.Connection]:
    """A pooled connection; a pool that stays exhausted for ``timeout`` is a 503."""
    try:
        conn = await pool.acquire(timeout=timeout)
    except TimeoutError:
        raise ServiceUnavailable(
            "The database is not answering; retry shortly", extra={"service": "postgres"}
        ) from None
    try:
        yield conn
    finally:
        await pool.release(conn)


@dataclass(frozen=True)
class Context:
    settings: Settings
    api: ApiSettings
    pool: asyncpg.Pool
    temporal: Client
    codec: EncryptionCodec
    # The working-day calendar as stored, cached per version (deadlines the API counts).
    calendar: CalendarStore = field(default_factory=CalendarStore)

    def connection(self) -> AbstractAsyncContextManager[asyncpg.Connection]:
        return connection(self.pool, self.api.pool_acquire_timeout)


async def get_context(request: Request) -> Context:
    # async: FastAPI runs a plain-def dependency in a worker thread, a hop that
    # costs more than everything this does.
    ctx: Context = request.app.state.ctx
    return ctx

"""FastAPI application: the pool and the Temporal client are made in the lifespan."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.middleware.cors import CORSMiddleware
from temporalio.client import Client

from api import codec, health
from api.errors import install_error_handlers
from app.codec import EncryptionCodec
from app.db import create_pool
from app.logging_setup import request_id_var
from app.settings import Settings, get_settings
from app.temporal import data_converter

log = logging.getLogger("api")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # min_size=0 and a lazy client: the process starts even while a backing
        # service is down, and /readyz says which one.
        app.state.pool = await create_pool(settings.database_url, min_size=0, max_size=20)
        app.state.temporal = await Client.connect(
            settings.temporal_address,
            namespace=settings.temporal_namespace,
            data_converter=data_converter(settings.encryption_keys),
            lazy=True,
        )
        try:
            yield
        finally:
            await app.state.pool.close()

    app = FastAPI(
        title="400 number registration API",
        version="1.0.0",
        description="Register China's 400 service numbers: apply, audit, allocate, verify, activate.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.codec = EncryptionCodec(settings.encryption_keys)
    install_error_handlers(app)

    @app.middleware("http")
    async def request_id(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        rid = request.headers.get("x-request-id") or uuid.uuid4().hex
        token = request_id_var.set(rid[:64])
        started = time.perf_counter()
        try:
            response = await call_next(request)
            response.headers["X-Request-ID"] = rid[:64]
            log.info(
                "request",
                extra={
                    "method": request.method,
                    "path": request.url.path,
                    "status": response.status_code,
                    "ms": round((time.perf_counter() - started) * 1000, 2),
                },
            )
            return response
        finally:
            request_id_var.reset(token)

    app.add_middleware(
        CORSMiddleware,
        allow_origins=[o.strip() for o in settings.codec_cors_origins.split(",") if o.strip()],
        allow_methods=["POST", "GET"],
        allow_headers=["*"],
    )
    app.include_router(health.router)
    app.include_router(codec.router)
    return app

"""FastAPI application: the pool and the Temporal client are made in the lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import asyncpg
from fastapi import Depends, FastAPI
from fastapi.routing import APIRoute
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import codec, errors, health, metrics
from api.auth import AuthenticationMiddleware, Authenticator
from api.config import ApiSettings
from api.db import Context
from api.docs import install_docs
from api.errors import PayloadTooLarge, install_error_handlers, problem
from api.metrics import DomainMetrics
from api.openapi import install_openapi
from api.query_parameters import refuse_unknown_query_parameters
from api.readiness import WorkflowHealth
from api.routers import (
    applications,
    calendar,
    catalogue,
    dashboard,
    documents,
    keys,
    numbers,
    operations,
    webhooks,
)
from api.schemas.common import TIMESTAMP_FORM
from api.services.documents import DocumentCipher
from api.services.events import StreamSlots
from api.services.workflow import WorkflowGateway
from api.textguard import QueryGuardMiddleware
from api.throttle import FailureWindow
from app import tracing
from app.codec import EncryptionCodec
from app.db import create_pool
from app.logging_setup import request_id_var
from app.metrics import HttpMetricsMiddleware, drain_temporal_metrics_forever
from app.settings import Settings, get_settings
from app.temporal import connect
from web.app import mount_console
from web.config import ConsoleSettings

log = logging.getLogger("api")

_PUBLIC = ("/healthz", "/readyz", "/docs", "/v1/openapi.json")
_MULTIPART_OVERHEAD = 64 * 1024


class RequestIdMiddleware:
    """X-Request-ID in and out, in every log line, and one access log line per request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        rid = (incoming or uuid.uuid4().hex)[:64]
        token = request_id_var.set(rid)
        started = time.perf_counter()
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)["X-Request-ID"] = rid
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            log.info(
                "request",
                extra={
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status,
                    "ms": round((time.perf_counter() - started) * 1000, 2),
                },
            )
            request_id_var.reset(token)


class BodyLimitMiddleware:
    """Refuses bodies over the limit with 413 before they are buffered: by the
    declared Content-Length when there is one, else while the body streams in."""

    def __init__(self, app: ASGIApp, json_limit: int, upload_limit: int) -> None:
        self.app = app
        self.json_limit = json_limit
        self.upload_limit = upload_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS", "DELETE"):
            await self.app(scope, receive, send)
            return
        limit = self.upload_limit if scope["path"].startswith("/v1/documents") else self.json_limit
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            response = problem(
                413,
                PayloadTooLarge.code,
                PayloadTooLarge.title,
                f"The request body may be at most {limit} bytes",
                scope["path"],
            )
            await response(scope, receive, send)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # An HTTPException passes through FastAPI's body reading as is;
                    # any other exception there would become a 400.
                    raise HTTPException(413, f"The request body may be at most {limit} bytes")
            return message

        await self.app(scope, limited, send)


def _is_public(codec_open: bool) -> Callable[[str], bool]:
    def check(path: str) -> bool:
        if path in _PUBLIC or path.startswith("/docs"):
            return True
        if codec_open and path.startswith("/v1/codec/"):
            return True
        return not path.startswith("/v1/")

    return check


async def _warm_pool(pool: asyncpg.Pool, count: int) -> None:
    """Opens ``count`` connections in the background, so that the first burst of
    requests does not pay for connecting (with min_size=0 the pool starts empty,
    which lets the process start while PostgreSQL is down)."""

    async def hold() -> None:
        # Held briefly, so that each task makes the pool open a connection of its
        # own; `async with` releases it even when shutdown cancels this.
        async with pool.acquire(timeout=10):
            await asyncio.sleep(0.2)

    # return_exceptions: PostgreSQL down or slow is for /readyz to report.
    await asyncio.gather(*(hold() for _ in range(count)), return_exceptions=True)


ROUTERS = (
    health.router,
    metrics.router,
    codec.router,
    catalogue.router,
    numbers.router,
    documents.router,
    applications.router,
    operations.router,
    dashboard.router,
    keys.router,
    webhooks.router,
    calendar.router,
)


def api_routes() -> list[APIRoute]:
    """Every route the API serves (what tests and the OpenAPI builder walk)."""
    return [r for router in ROUTERS for r in router.routes if isinstance(r, APIRoute)]


def create_app(
    settings: Settings | None = None,
    api_settings: ApiSettings | None = None,
    console_settings: ConsoleSettings | None = None,
    *,
    tracer_provider: TracerProvider | None = None,
) -> FastAPI:
    """The API. ``tracer_provider``: where spans go (default: OTLP when
    ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set, else no tracing)."""
    settings = settings or get_settings()
    api_settings = api_settings or ApiSettings()
    tracer_provider = tracer_provider or tracing.provider_from_env("hotline400-api")
    errors.RETRY_AFTER_SECONDS = api_settings.retry_after_seconds
    # Decoding reveals personal data: outside development an operator or admin key
    # is always required; API_CODEC_REQUIRES_AUTH can only add it in development.
    codec_requires_auth = settings.environment != "development" or bool(api_settings.codec_requires_auth)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # min_size=0 and a lazy client: the process starts even while a backing
        # service is down, and /readyz says which one.
        app.state.pool = await create_pool(
            settings.database_url, min_size=0, max_size=api_settings.pool_max_size
        )
        app.state.temporal = await connect(
            settings, lazy=True, interceptors=tracing.temporal_interceptors(tracer_provider)
        )
        app.state.workflow_health = WorkflowHealth(
            app.state.temporal,
            settings.temporal_task_queue,
            interval=api_settings.health_interval_seconds,
            poller_fresh_seconds=api_settings.temporal_long_poll_seconds + api_settings.poller_margin_seconds,
            poller_grace_seconds=api_settings.poller_grace_seconds,
        )
        app.state.workflow_health.start()
        app.state.gateway = WorkflowGateway(
            app.state.temporal,
            settings.temporal_task_queue,
            api_settings.update_timeout_seconds,
            health=app.state.workflow_health,
        )
        app.state.domain_metrics = DomainMetrics(
            app.state.pool, app.state.workflow_health, api_settings.metrics_max_age_seconds
        )
        app.state.metrics_registry = CollectorRegistry(auto_describe=False)
        app.state.metrics_registry.register(app.state.domain_metrics)
        drain = asyncio.create_task(drain_temporal_metrics_forever())
        app.state.ctx = Context(
            settings=settings,
            api=api_settings,
            pool=app.state.pool,
            temporal=app.state.temporal,
            codec=app.state.codec,
        )
        warm = asyncio.create_task(_warm_pool(app.state.pool, api_settings.pool_min_size))
        # Everything loaded so far (modules, models, routes: ~100k objects) lives
        # as long as the process. Moved out of the collector's reach, a full
        # collection no longer stalls every request in flight for ~100 ms.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            warm.cancel()
            drain.cancel()
            await app.state.workflow_health.stop()
            with contextlib.suppress(asyncio.CancelledError):
                await warm  # its connections are back in the pool before it closes
            await app.state.pool.close()

    app = FastAPI(
        title="400 number registration API",
        version="1.0.0",
        description=(
            "Register China's 400 service numbers: apply, audit, allocate, verify, activate.\n\n"
            "Authenticate with `Authorization: Bearer h400_<id>_<secret>`. Each key has one role: "
            "`applicant` (bound to one organisation), `operator`, `admin` or `viewer` (dashboards). "
            "Errors are RFC 9457 `application/problem+json` with a stable `code` and, for invalid "
            "input, `errors` naming each field.\n\n"
            f"Every timestamp in a response is {TIMESTAMP_FORM}, whatever offset it was sent with; "
            "timestamps you send need a UTC offset (`Z` or e.g. `+08:00`)."
        ),
        lifespan=lifespan,
        openapi_url="/v1/openapi.json",
        # Served by api.docs from installed files, not FastAPI's CDN-loading pages.
        docs_url=None,
        redoc_url=None,
        middleware=[
            Middleware(HttpMetricsMiddleware),
            Middleware(RequestIdMiddleware),
            Middleware(
                CORSMiddleware,
                allow_origins=[o.strip() for o in settings.codec_cors_origins.split(",") if o.strip()],
                allow_methods=["POST", "GET"],
                allow_headers=["*"],
            ),
            Middleware(
                BodyLimitMiddleware,
                json_limit=api_settings.max_json_bytes,
                upload_limit=api_settings.max_upload_bytes + _MULTIPART_OVERHEAD,
            ),
            Middleware(QueryGuardMiddleware),
            Middleware(AuthenticationMiddleware, is_public=_is_public(not codec_requires_auth)),
        ],
    )
    app.state.settings = settings
    app.state.api_settings = api_settings
    app.state.codec = EncryptionCodec(settings.encryption_keys)
    app.state.document_cipher = DocumentCipher(settings.encryption_keys)
    app.state.authenticator = Authenticator(
        settings.api_key_pepper,
        api_settings.auth_cache_seconds,
        by_key=FailureWindow(api_settings.auth_failures_per_key, api_settings.auth_failure_window_seconds),
        by_address=FailureWindow(
            api_settings.auth_failures_per_address, api_settings.auth_failure_window_seconds
        ),
    )
    app.state.codec_requires_auth = codec_requires_auth
    app.state.stream_slots = StreamSlots(
        api_settings.sse_max_streams_per_key, api_settings.sse_max_stream_seconds + 60
    )
    install_error_handlers(app)

    for router in ROUTERS:
        # Health and metrics stay lenient: probes and scrapers add their own.
        lenient = router in (health.router, metrics.router)
        app.include_router(router, dependencies=[] if lenient else [Depends(refuse_unknown_query_parameters)])
    install_openapi(app, ROUTERS)
    install_docs(app, "/v1/openapi.json")
    # The operator console, in the same process: it calls the same services.
    mount_console(app, console_settings)
    if tracer_provider is not None:
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        tracing.instrument_asyncpg(tracer_provider)
        FastAPIInstrumentor.instrument_app(
            app, tracer_provider=tracer_provider, excluded_urls=tracing.EXCLUDED_URLS
        )
    return app

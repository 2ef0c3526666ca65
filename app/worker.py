"""The worker process: runs registration workflows and their activities."""

from __future__ import annotations

import asyncio
import logging
import signal
from datetime import timedelta

from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.inventory_sweeper import sweep_forever
from activities.webhook_waker import WebhookWaker
from activities.webhooks import LocalWakeups
from app import registry, tracing
from app.db import create_pool
from app.metrics import drain_temporal_metrics_forever
from app.settings import Settings
from app.temporal import connect

log = logging.getLogger("worker")

# Modules the workflow sandbox must not re-import: native extensions break when
# loaded twice (a segfault on asyncpg's connection close was seen here), and pure
# domain rules are deterministic, so sharing them is safe and faster.
PASSTHROUGH_MODULES = (
    "asyncpg",
    "pydantic",
    "pydantic_core",
    "stdnum",
    "chinese_calendar",
    "domain",
    "cryptography",
    "app",
)


def workflow_runner() -> SandboxedWorkflowRunner:
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH_MODULES)
    )


async def _heartbeat(client: Client, settings: Settings) -> None:
    path = settings.worker_heartbeat_file
    if path is None:
        return
    while True:
        try:
            await client.service_client.check_health()
            path.touch()
        except Exception:  # noqa: BLE001 - a stale file is the signal
            log.warning("temporal health check failed")
        await asyncio.sleep(10)


def serve_metrics(settings: Settings) -> None:
    """/metrics on the worker's own port: the SDK's metrics and the carrier calls."""
    if settings.worker_metrics_port:
        from prometheus_client import start_http_server

        try:
            start_http_server(settings.worker_metrics_port, addr=settings.worker_metrics_host)
        except OSError as exc:
            # Metrics are not worth stopping the work for (the port is taken).
            log.error("worker metrics not served", extra={"error": str(exc)})
            return
        log.info(
            "worker metrics",
            extra={"url": f"http://{settings.worker_metrics_host}:{settings.worker_metrics_port}/metrics"},
        )


async def run_worker(settings: Settings) -> None:
    provider = tracing.provider_from_env("hotline400-worker")
    if provider is not None:
        tracing.instrument_asyncpg(provider)
    serve_metrics(settings)
    pool = await create_pool(settings.database_url, min_size=2, max_size=settings.worker_pool_max_size)
    client = await connect(settings, interceptors=tracing.temporal_interceptors(provider))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    wakeups = LocalWakeups()
    # Every activity is async: no thread pool (a pool smaller than the activity slots
    # would only draw the SDK's warning).
    worker = Worker(
        client,
        task_queue=settings.temporal_task_queue,
        workflows=list(registry.workflow_classes()),
        activities=list(registry.activity_callables(pool, settings, wakeups)),
        workflow_runner=workflow_runner(),
        graceful_shutdown_timeout=timedelta(seconds=10),
        max_cached_workflows=settings.worker_max_cached_workflows,
        max_concurrent_workflow_task_polls=settings.worker_workflow_task_pollers,
        max_concurrent_activity_task_polls=settings.worker_activity_task_pollers,
        max_concurrent_activities=settings.worker_max_concurrent_activities,
    )
    log.info("worker started", extra={"task_queue": settings.temporal_task_queue})
    async with worker:
        drain = asyncio.create_task(drain_temporal_metrics_forever())
        heartbeat = asyncio.create_task(_heartbeat(client, settings))
        # Expired holds (e.g. a crashed caller's) and ended quarantines go back
        # to the available pool; every worker sweeps, the SQL is safe to race.
        sweeper = asyncio.create_task(sweep_forever(pool, settings.inventory_sweep_interval, stop))
        # Wakes webhook endpoints' senders as deliveries are queued.
        waker = WebhookWaker(client, settings.temporal_task_queue, pool, settings, wakeups)
        waking = asyncio.create_task(waker.run(stop))
        await stop.wait()
        heartbeat.cancel()
        drain.cancel()
        await sweeper
        await waking
        log.info("worker stopping")
    await pool.close()

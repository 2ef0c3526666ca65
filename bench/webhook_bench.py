"""Webhook delivery under load: event-to-receiver latency, throughput, lost and
duplicated messages.

    python -m bench.webhook_bench [--registrations 1000] [--endpoints 10] [--concurrency 40] [--warmup 20]

Starts its own servers in a temporary folder on free ports (embedded
PostgreSQL, the Temporal dev server) and the production worker in a
subprocess (``python -m app worker``: registration and webhook workflows, the
webhook waker). This process drives the registrations and runs the receivers.

``--endpoints`` organisations each get one endpoint subscribed to every event
type but "deadline approaching" (whose notices depend on when the sweeper
runs, and would make the expected count a guess), and a receiver of its own
on 127.0.0.1. The registrations are spread over the organisations and moved
apply -> approve -> prepay -> verify -> active, ``--concurrency`` at a time;
each one makes 7 messages (submitted; approved, number allocated and
prepayment due; prepayment received; verification passed; activated).

Prints, per message: latency from the event's commit (its ``recorded_at``,
taken inside the appending transaction, so the figure slightly overstates the
latency) to its arrival at the receiver, p50/p99/max, after ``--warmup``
registrations that start every endpoint's workflow; deliveries per second
(from the first event to the last arrival: the pace the registrations set),
and again when every endpoint replays the measured period at once (the pace
the senders keep); and checks: messages expected
from the event log and never acknowledged (lost), messages acknowledged more
than once (duplicated successes), and signatures that the standardwebhooks
verifier refused. Targets: p99 <= 2 s, 0 lost, 0 duplicated.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
from temporalio.client import Client

from activities.repositories import inventory
from api.auth import Principal, Role
from api.schemas.webhooks import WebhookEndpointCreate
from api.services import webhooks as webhook_service
from api.services.documents import DocumentCipher
from app.db import create_pool, migrate
from app.embedded import EmbeddedPostgres, EmbeddedTemporal, free_port
from app.settings import Settings, WebhookSettings
from app.temporal import data_converter
from bench.registration_bench import PREFIX, registration
from domain.webhooks import CATALOGUE, DEADLINE_APPROACHING, routes_for
from tests.webhook_receiver import Received, Receiver

TASK_QUEUE = "bench"
EVENT_TYPES = [t.type for t in CATALOGUE if DEADLINE_APPROACHING not in t.sources]


async def spawn_worker(env: dict[str, str]) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app", "worker", env=env, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stderr is not None
    async with asyncio.timeout(60):
        while b"worker started" not in await proc.stderr.readline():
            if proc.returncode is not None:
                raise SystemExit("the worker did not start")

    async def drain() -> None:
        assert proc.stderr is not None
        while await proc.stderr.readline():
            pass

    asyncio.get_running_loop().create_task(drain())
    return proc


async def replay_burst(
    pool: asyncpg.Pool,
    receivers: list[Receiver],
    organisations: list[str],
    endpoint_of: dict[str, str],
    since: float,
    timeout: float,
) -> tuple[int, float]:
    """Throughput when deliveries queue up: every endpoint replays the measured
    period at once (as after an outage); (messages, seconds until all arrived)."""
    before = [len(r.received) for r in receivers]
    started = time.monotonic()
    queued: list[int] = []
    async with pool.acquire() as conn:
        for organisation in organisations:
            replayed = await webhook_service.replay(
                conn,
                Principal("bench", Role.APPLICANT, organisation),
                endpoint_of[organisation],
                since=datetime.fromtimestamp(since, UTC),
                until=None,
                limits=WebhookSettings(),
            )
            queued.append(replayed.queued)

    async def drained(receiver: Receiver, count: int) -> None:
        with contextlib.suppress(AssertionError):
            await receiver.wait_for(lambda got: len(got) >= count, timeout=timeout)

    await asyncio.gather(*(drained(r, b + q) for r, b, q in zip(receivers, before, queued, strict=True)))
    return sum(queued), time.monotonic() - started


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


async def bench(args: argparse.Namespace, database_url: str, temporal_address: str) -> None:
    key = base64.b64encode(os.urandom(32)).decode()
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        environment="test",  # receivers on 127.0.0.1 over http
        database_url=database_url,
        temporal_address=temporal_address,
        payload_encryption_keys=key,
    )
    pool = await create_pool(database_url, min_size=4, max_size=20)
    client = await Client.connect(temporal_address, data_converter=data_converter(settings.encryption_keys))
    numbers = [f"{PREFIX}{i:06d}" for i in range(args.registrations + args.warmup)]
    async with pool.acquire() as conn:
        await inventory.insert_numbers(conn, numbers)

    receivers = [await Receiver().start() for _ in range(args.endpoints)]
    organisations = [f"org_bench_{n}" for n in range(args.endpoints)]
    secrets: dict[str, str] = {}
    endpoint_of: dict[str, str] = {}
    cipher = DocumentCipher(settings.encryption_keys)
    policy = webhook_service.receiver_policy(settings)
    async with pool.acquire() as conn:
        for organisation, receiver in zip(organisations, receivers, strict=True):
            created = await webhook_service.create_endpoint(
                conn,
                Principal("bench", Role.APPLICANT, organisation),
                WebhookEndpointCreate(url=receiver.url, event_types=EVENT_TYPES),
                policy=policy,
                cipher=cipher,
            )
            secrets[created.id] = created.secret
            endpoint_of[organisation] = created.id

    env = {
        **os.environ,
        "ENVIRONMENT": "test",
        "DATABASE_URL": database_url,
        "TEMPORAL_ADDRESS": temporal_address,
        "TEMPORAL_TASK_QUEUE": TASK_QUEUE,
        "PAYLOAD_ENCRYPTION_KEYS": key,
    }
    worker = await spawn_worker(env)
    print(
        f"servers and worker up; {args.registrations} registrations over {args.endpoints} organisations, "
        f"one endpoint each, {args.concurrency} registrations moving at once",
        flush=True,
    )
    try:
        gate = asyncio.Semaphore(args.concurrency)
        free = iter(numbers)

        async def one(i: int) -> None:
            async with gate:
                await registration(client, TASK_QUEUE, next(free), organisations[i % args.endpoints])

        # Warm-up: every endpoint's workflow started and its worker's code
        # loaded; their messages count for lost and duplicated, not for latency.
        await asyncio.gather(*(one(i) for i in range(args.warmup)))
        await asyncio.sleep(2)
        measured_from = time.time()
        await asyncio.gather(*(one(i) for i in range(args.registrations)))
        driven = time.time() - measured_from
        print(f"registrations driven to ACTIVE in {driven:.1f} s", flush=True)

        # What the event log says each endpoint must receive.
        routes = routes_for(EVENT_TYPES)
        rows = await pool.fetch(
            """SELECT e.position, e.event_type, e.recorded_at, r.organisation_id
               FROM domain_event e JOIN registration r ON r.id = e.stream_id"""
        )
        expected = {
            (endpoint_of[row["organisation_id"]], row["position"], kind)
            for row in rows
            for kind in routes.get(row["event_type"], [])
        }
        committed = {row["position"]: row["recorded_at"].timestamp() for row in rows}

        per_endpoint = Counter(endpoint for endpoint, _, _ in expected)

        async def drained(receiver: Receiver, count: int) -> None:
            def done(got: list[Received]) -> bool:
                return len({r.webhook_id for r in got if r.status == 200}) >= count

            with contextlib.suppress(AssertionError):  # stragglers past the timeout count as lost
                await receiver.wait_for(done, timeout=args.drain_timeout)

        await asyncio.gather(
            *(drained(r, per_endpoint[endpoint_of[o]]) for o, r in zip(organisations, receivers, strict=True))
        )
        await asyncio.sleep(1.0)  # anything more than expected would show now
        received = [r for receiver in receivers for r in receiver.received]
        burst = await replay_burst(
            pool, receivers, organisations, endpoint_of, measured_from, args.drain_timeout
        )
    finally:
        worker.terminate()
        await worker.wait()

    ids = {uuid.UUID(hex=r.webhook_id.removeprefix("msg_")) for r in received}
    deliveries = {
        row["id"]: row
        for row in await pool.fetch(
            """SELECT id, endpoint_id, event_position, event_type FROM webhook_delivery
               WHERE id = ANY($1::uuid[])""",
            list(ids),
        )
    }
    acks = Counter(r.webhook_id for r in received if 200 <= r.status < 300)
    delivered: set[tuple[str, int, str]] = set()
    latencies: list[float] = []
    first_arrival: dict[str, float] = {}
    for r in received:
        if 200 <= r.status < 300 and r.webhook_id not in first_arrival:
            first_arrival[r.webhook_id] = r.arrived
    for msg_id, arrived in first_arrival.items():
        row = deliveries[uuid.UUID(hex=msg_id.removeprefix("msg_"))]
        delivered.add((row["endpoint_id"], row["event_position"], row["event_type"]))
        if committed[row["event_position"]] >= measured_from:
            latencies.append(arrived - committed[row["event_position"]])

    unverified = 0
    for receiver in receivers:
        for r in receiver.received:
            row = deliveries[uuid.UUID(hex=r.webhook_id.removeprefix("msg_"))]
            try:
                r.verify(secrets[row["endpoint_id"]])
            except Exception:
                unverified += 1
    status_rows = await pool.fetch("SELECT status, count(*) AS n FROM webhook_delivery GROUP BY status")
    await pool.close()
    for receiver in receivers:
        await receiver.stop()

    first_event = min(c for c in committed.values() if c >= measured_from)
    last_arrival = max(first_arrival.values()) if first_arrival else first_event
    lost = len(expected - delivered)
    duplicated = sum(1 for n in acks.values() if n > 1)
    print()
    print(f"messages expected           {len(expected):8d}   (from the event log and the subscriptions)")
    print(f"messages acknowledged       {len(first_arrival):8d}   ({len(received)} requests in all)")
    print(f"measured                    {len(latencies):8d}   (after {args.warmup} warm-up registrations)")
    print(f"latency p50                 {statistics.median(latencies) if latencies else 0:8.3f} s")
    print(f"latency p99                 {percentile(latencies, 0.99):8.3f} s   (target <= 2 s)")
    print(f"latency max                 {max(latencies, default=0):8.3f} s")
    rate = len(latencies) / max(last_arrival - first_event, 1e-9)
    print(f"deliveries per second       {rate:8.1f}   (first event to last arrival)")
    print(f"lost                        {lost:8d}   (target 0)")
    print(f"duplicated successes        {duplicated:8d}   (target 0)")
    print(f"signatures refused          {unverified:8d}")
    messages, seconds = burst
    print(
        f"replay burst                {messages / seconds:8.1f}   deliveries per second "
        f"({messages} queued at once)"
    )
    print("delivery rows               " + ", ".join(f"{r['status']} {r['n']}" for r in status_rows))


async def run(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="h400-webhookbench-"))
    pg = EmbeddedPostgres(tmp / "pg", free_port(), database="bench")
    temporal = EmbeddedTemporal(tmp / "temporal", free_port(), ui_port=None)
    try:
        await asyncio.to_thread(pg.start)
        await asyncio.to_thread(migrate, pg.url)
        await asyncio.to_thread(temporal.start)
        await bench(args, pg.url, temporal.address)
    finally:
        temporal.stop()
        pg.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--registrations", type=int, default=1000)
    parser.add_argument("--endpoints", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=20, help="registrations before the measured ones")
    parser.add_argument("--drain-timeout", type=float, default=120.0, help="seconds to wait for stragglers")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()

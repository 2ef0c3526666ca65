"""A worker killed mid-delivery loses nothing, and sends nothing twice but the
one documented retry: the production worker (``python -m app worker``, with its
webhook waker) in a subprocess, SIGKILLed while a receiver holds its request."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import httpx
import pytest
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from api.auth import Role
from app.settings import Settings
from tests.api.fixtures import application_body, make_key
from tests.webhook_receiver import Answer, Receiver
from tests.workflows.test_registration_dev_server import WorkerProcess
from workflows.webhook_contracts import SWEEPER_WORKFLOW_ID


@pytest.fixture
async def spawn_worker(
    temporal_env: WorkflowEnvironment, pg_url: str, settings: Settings
) -> AsyncIterator[Callable[[], Awaitable[WorkerProcess]]]:
    task_queue = f"webhooks-kill-{uuid.uuid4()}"
    env = {
        **os.environ,
        "ENVIRONMENT": "test",
        "DATABASE_URL": pg_url,
        "TEMPORAL_ADDRESS": temporal_env.client.service_client.config.target_host,
        "TEMPORAL_TASK_QUEUE": task_queue,
        "PAYLOAD_ENCRYPTION_KEYS": settings.payload_encryption_keys,
        "LOG_FORMAT": "json",
        "WEBHOOKS__ATTEMPT_TIMEOUT": "PT2S",
        "WEBHOOKS__HEARTBEAT_TIMEOUT": "PT2S",
        "WEBHOOKS__RETRY_INITIAL": "PT0.1S",
        "WEBHOOKS__LINGER": "PT0.5S",
        "WEBHOOKS__SAFETY_POLL_INTERVAL": "PT1S",
    }
    started: list[WorkerProcess] = []
    drains: list[asyncio.Task[None]] = []

    async def spawn() -> WorkerProcess:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "app",
            "worker",
            env=env,
            # Its log (on stderr) says when it is up.
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        worker = WorkerProcess(proc)
        started.append(worker)
        await worker.wait_for("worker started")
        # Read on, so that a full pipe never stops the worker mid-log.
        drains.append(asyncio.create_task(_drain(proc.stdout)))
        return worker

    yield spawn
    for worker in started:
        if worker.proc.returncode is None:
            await worker.kill()
    with contextlib.suppress(RPCError):
        await temporal_env.client.get_workflow_handle(SWEEPER_WORKFLOW_ID).terminate("test over")


async def _drain(stream: asyncio.StreamReader | None) -> None:
    while stream is not None and await stream.readline():
        pass


async def submit(client: httpx.AsyncClient, pool: asyncpg.Pool, token: str) -> str:
    body = await application_body(client, pool, token)
    response = await client.post(
        "/v1/applications",
        json=body,
        headers={"Authorization": f"Bearer {token}", "Idempotency-Key": str(uuid.uuid4())},
    )
    assert response.status_code == 201, response.text
    app_id: str = response.json()["id"]
    return app_id


async def test_a_worker_killed_mid_delivery_loses_nothing(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    settings: Settings,
    spawn_worker: Callable[[], Awaitable[WorkerProcess]],
) -> None:
    org = f"org_{uuid.uuid4().hex[:12]}"
    token = await make_key(pool, settings, Role.APPLICANT, org)
    headers = {"Authorization": f"Bearer {token}"}
    first_request = asyncio.Event()

    def respond(n: int, request_headers: dict[str, str], body: bytes) -> Answer:
        if n == 1:
            first_request.set()
            return Answer(hang=True)  # the worker dies while this request is open
        return Answer(200)

    async with Receiver(respond) as receiver:
        created = await client.post(
            "/v1/webhook-endpoints",
            json={"url": receiver.url, "event_types": ["application.submitted"]},
            headers=headers,
        )
        assert created.status_code == 201, created.text
        endpoint = created.json()
        worker = await spawn_worker()
        first = await submit(client, pool, token)
        await asyncio.wait_for(first_request.wait(), 30)
        await worker.kill()

        # Queued while no worker runs: its wake-up goes unheard.
        second = await submit(client, pool, token)
        await asyncio.sleep(0.5)
        assert receiver.count == 1

        await spawn_worker()
        await receiver.wait_for(lambda got: len([r for r in got if r.status == 200]) == 2, timeout=45)
        await asyncio.sleep(0.5)

    payloads: dict[str, Any] = {r.webhook_id: r.verify(endpoint["secret"]) for r in receiver.received}
    assert sorted(p["data"]["application_id"] for p in payloads.values()) == sorted([first, second])
    statuses: dict[str, list[int]] = {}
    for r in receiver.received:
        statuses.setdefault(r.webhook_id, []).append(r.status)
    first_id = receiver.received[0].webhook_id
    # The message in flight when the worker died is sent again with its id
    # (the documented at-least-once retry); each message succeeds exactly once.
    assert statuses[first_id] == [0, 200]
    assert sorted(statuses.values()) == [[0, 200], [200]]
    log = (await client.get(f"/v1/webhook-endpoints/{endpoint['id']}/deliveries", headers=headers)).json()[
        "items"
    ]
    assert {(d["id"], d["status"]) for d in log} == {(i, "succeeded") for i in statuses}

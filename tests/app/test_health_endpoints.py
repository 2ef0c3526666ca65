from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from api.config import ApiSettings
from api.main import create_app
from app.embedded import free_port
from app.settings import Settings
from app.temporal import connect
from tests.conftest import TEST_LONG_POLL_SECONDS
from workflows.registration import RegistrationWorkflow


@asynccontextmanager
async def _client(
    settings: Settings, api_settings: ApiSettings | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, api_settings)
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client,
    ):
        yield client


def _with(settings: Settings, **changes: object) -> Settings:
    return settings.model_copy(update=changes)


def _fast_polls() -> ApiSettings:
    return ApiSettings(  # type: ignore[call-arg]
        _env_file=None,
        health_interval_seconds=0.2,
        temporal_long_poll_seconds=TEST_LONG_POLL_SECONDS,
        poller_margin_seconds=1,
        poller_grace_seconds=0.5,
    )


async def test_ready_when_both_servers_answer_and_a_worker_polls(
    stack_settings: Settings, api_worker: Worker
) -> None:
    async with _client(stack_settings) as client:
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        ready = await client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"postgres": "ok", "temporal": "ok", "workers": "ok"}
    assert ready.json()["workflows"]["pollers"]["workflow"]["live"] >= 1
    assert ready.headers["x-request-id"]


async def test_not_ready_while_no_worker_polls_then_ready_then_not_once_it_stops(
    settings: Settings, temporal_env: WorkflowEnvironment
) -> None:
    target = temporal_env.client.service_client.config.target_host
    queue = f"readyz-{uuid.uuid4()}"
    async with _client(
        _with(settings, temporal_address=target, temporal_task_queue=queue), _fast_polls()
    ) as c:
        idle = await _wait_status(c, 503, within=3)
        assert idle["checks"]["workers"] == "none polling"
        assert idle["workflows"]["pollers"]["workflow"]["live"] == 0

        client = await connect(_with(settings, temporal_address=target))
        with ThreadPoolExecutor(max_workers=1) as executor:
            worker = Worker(
                client, task_queue=queue, workflows=[RegistrationWorkflow], activity_executor=executor
            )
            async with worker:
                ready = await _wait_status(c, 200, within=5)
                assert ready["workflows"]["pollers"]["workflow"]["live"] == 1
        # Its last poll ages past the server's long poll (plus the margin).
        gone = await _wait_status(c, 503, within=TEST_LONG_POLL_SECONDS + 6)
        assert gone["checks"]["workers"] == "none polling"


async def _wait_status(client: httpx.AsyncClient, status: int, within: float) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while True:
        response = await client.get("/readyz")
        if response.status_code == status or time.monotonic() > deadline:
            assert response.status_code == status, response.text
            body: dict[str, Any] = response.json()
            return body
        await asyncio.sleep(0.2)


async def test_not_ready_names_temporal_when_it_is_down(settings: Settings) -> None:
    async with _client(_with(settings, temporal_address=f"127.0.0.1:{free_port()}")) as client:
        assert (await client.get("/healthz")).status_code == 200
        ready = await client.get("/readyz")
    assert ready.status_code == 503
    body = ready.json()
    assert body["checks"] == {"postgres": "ok", "temporal": "unavailable", "workers": "unknown"}
    assert "temporal" in body["detail"]
    assert ready.headers["retry-after"]


async def test_not_ready_names_postgres_when_it_is_down(stack_settings: Settings, api_worker: Worker) -> None:
    dead_pg = f"postgres://postgres@127.0.0.1:{free_port()}/nothing"
    async with _client(_with(stack_settings, database_url=dead_pg)) as client:
        ready = await client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"] == {"postgres": "unavailable", "temporal": "ok", "workers": "ok"}


async def test_request_id_is_echoed(settings: Settings) -> None:
    async with _client(_with(settings, temporal_address=f"127.0.0.1:{free_port()}")) as client:
        response = await client.get("/healthz", headers={"X-Request-ID": "abc-1"})
    assert response.headers["x-request-id"] == "abc-1"

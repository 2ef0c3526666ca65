from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from asgi_lifespan import LifespanManager
from temporalio.testing import WorkflowEnvironment

from api.main import create_app
from app.embedded import free_port
from app.settings import Settings


@asynccontextmanager
async def _client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client,
    ):
        yield client


def _with(settings: Settings, **changes: object) -> Settings:
    return settings.model_copy(update=changes)


async def test_ready_when_both_servers_answer(settings: Settings, temporal_env: WorkflowEnvironment) -> None:
    target = temporal_env.client.service_client.config.target_host
    async with _client(_with(settings, temporal_address=target)) as client:
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        ready = await client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"postgres": "ok", "temporal": "ok"}
    assert ready.headers["x-request-id"]


async def test_not_ready_names_temporal_when_it_is_down(settings: Settings) -> None:
    async with _client(_with(settings, temporal_address=f"127.0.0.1:{free_port()}")) as client:
        assert (await client.get("/healthz")).status_code == 200
        ready = await client.get("/readyz")
    assert ready.status_code == 503
    body = ready.json()
    assert body["checks"] == {"postgres": "ok", "temporal": "unavailable"}
    assert "temporal" in body["detail"]
    assert ready.headers["retry-after"]


async def test_not_ready_names_postgres_when_it_is_down(
    settings: Settings, temporal_env: WorkflowEnvironment
) -> None:
    target = temporal_env.client.service_client.config.target_host
    dead_pg = f"postgres://postgres@127.0.0.1:{free_port()}/nothing"
    async with _client(_with(settings, temporal_address=target, database_url=dead_pg)) as client:
        ready = await client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"] == {"postgres": "unavailable", "temporal": "ok"}


async def test_request_id_is_echoed(settings: Settings) -> None:
    async with _client(_with(settings, temporal_address=f"127.0.0.1:{free_port()}")) as client:
        response = await client.get("/healthz", headers={"X-Request-ID": "abc-1"})
    assert response.headers["x-request-id"] == "abc-1"

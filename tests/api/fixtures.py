"""Fixtures of the API suite, loaded by tests/conftest.py as a plugin.

The API against the real stack: PostgreSQL, the Temporal dev server and a worker
running the registration workflow, driven through httpx's ASGI transport."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from api.auth import Role
from api.config import ApiSettings
from api.main import create_app
from api.services import keys
from app import registry
from app.settings import Settings
from app.temporal import connect
from app.worker import workflow_runner
from tests.domain.factories import valid_application_dict
from tests.factories_inventory import add_fresh_numbers

# China Unicom numbers; other suites use 4001 (workflows) and 4009 (importer).
PREFIX = "4000"
CARRIER = "china_unicom"

PDF = b"%PDF-1.4\n% test document\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 32


@pytest.fixture(scope="session")
def api_task_queue() -> str:
    return f"api-tq-{uuid.uuid4()}"


@pytest.fixture(scope="session")
def api_settings() -> ApiSettings:
    return ApiSettings(
        _env_file=None,  # type: ignore[call-arg]
        auth_cache_seconds=0.5,
        sse_poll_seconds=0.05,
        sse_gap_seconds=0.5,
        update_timeout_seconds=20,
        max_upload_bytes=64 * 1024,
        pool_max_size=30,
        metrics_max_age_seconds=0,
        # Every test request comes from one address; tests of the throttle use apps of their own.
        auth_failures_per_address=100_000,
        auth_failures_per_key=1_000,
    )


@pytest.fixture(scope="session")
def stack_settings(settings: Settings, temporal_env: WorkflowEnvironment, api_task_queue: str) -> Settings:
    return settings.model_copy(
        update={
            "temporal_address": temporal_env.client.service_client.config.target_host,
            "temporal_task_queue": api_task_queue,
        }
    )


@pytest.fixture(scope="session")
async def api_worker(
    temporal_env: WorkflowEnvironment, pool: asyncpg.Pool, stack_settings: Settings, api_task_queue: str
) -> AsyncIterator[Worker]:
    """The worker the dev stack runs (app.registry), on this session's task queue,
    through a client like the worker process's (its SDK metrics reach /metrics)."""
    client = await connect(stack_settings)
    with ThreadPoolExecutor(max_workers=8) as executor:
        worker = Worker(
            client,
            task_queue=api_task_queue,
            workflows=list(registry.workflow_classes()),
            activities=list(registry.activity_callables(pool, stack_settings)),
            activity_executor=executor,
            workflow_runner=workflow_runner(),
        )
        async with worker:
            yield worker


@pytest.fixture(scope="session")
async def api_app(
    stack_settings: Settings, api_settings: ApiSettings, api_worker: Worker
) -> AsyncIterator[FastAPI]:
    app = create_app(stack_settings, api_settings)
    async with LifespanManager(app):
        yield app


@pytest.fixture(scope="session")
async def client(api_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api_app), base_url="http://test") as c:
        yield c


@dataclass
class Keys:
    """One token per role; ``applicant`` and ``other_applicant`` act for different organisations."""

    tokens: dict[str, str] = field(default_factory=dict)
    organisation: str = ""
    other_organisation: str = ""

    def __getitem__(self, role: str) -> str:
        return self.tokens[role]

    def headers(self, role: str, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}", **extra}


async def make_key(
    pool: asyncpg.Pool, settings: Settings, role: Role, organisation: str | None = None
) -> str:
    async with pool.acquire() as conn:
        created = await keys.create_key(
            conn,
            settings.api_key_pepper,
            role=role,
            organisation_id=organisation,
            name=f"test {role.value}",
            created_by="tests",
        )
    return created.token


@pytest.fixture(scope="session")
async def api_keys(pool: asyncpg.Pool, settings: Settings) -> Keys:
    org = f"org_{uuid.uuid4().hex[:12]}"
    other = f"org_{uuid.uuid4().hex[:12]}"
    k = Keys(organisation=org, other_organisation=other)
    for role in Role:
        k.tokens[role.value] = await make_key(pool, settings, role, org if role is Role.APPLICANT else None)
    k.tokens["other_applicant"] = await make_key(pool, settings, Role.APPLICANT, other)
    return k


async def upload(
    client: httpx.AsyncClient,
    token: str,
    kind: str,
    content: bytes = PDF,
    content_type: str = "application/pdf",
) -> dict[str, Any]:
    response = await client.post(
        "/v1/documents",
        headers={"Authorization": f"Bearer {token}"},
        data={"kind": kind},
        files={"file": (f"{kind}.pdf", content, content_type)},
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def application_body(
    client: httpx.AsyncClient, pool: asyncpg.Pool, token: str, *, number: str | None = None, **overrides: Any
) -> dict[str, Any]:
    """A valid application for a fresh number, with its documents really uploaded."""
    if number is None:
        number = (await add_fresh_numbers(pool, 1, prefix=PREFIX))[0]
    docs = []
    for kind in ("business_licence", "legal_rep_id", "application_form"):
        docs.append({"document_id": (await upload(client, token, kind))["id"]})
    # The factory's fixed activation time is long past, which the API refuses.
    overrides.setdefault("activation_at", None)
    body = valid_application_dict(carrier=CARRIER, requested_number=number, documents=docs, **overrides)
    body.pop("organisation_id")
    return body


async def submit(
    client: httpx.AsyncClient, keys_: Keys, body: dict[str, Any], role: str = "applicant"
) -> httpx.Response:
    return await client.post(
        "/v1/applications", json=body, headers=keys_.headers(role, **{"Idempotency-Key": str(uuid.uuid4())})
    )


async def activate(
    client: httpx.AsyncClient, api_keys: Keys, app_id: str, payment_key: str | None = None
) -> dict[str, Any]:
    """Approve, pay in full (with ``payment_key`` as the Idempotency-Key, if given)
    and verify a submitted application; its state once ACTIVE."""
    op = api_keys.headers("operator")
    approved = await client.post(
        f"/v1/applications/{app_id}/decision", json={"decision": "approve"}, headers=op
    )
    assert approved.status_code == 200, approved.text
    required = approved.json()["fees"]["first_prepayment_fen"]
    paid = await client.post(
        f"/v1/applications/{app_id}/payments",
        json={"amount_fen": required},
        headers=api_keys.headers("applicant", **{"Idempotency-Key": payment_key or str(uuid.uuid4())}),
    )
    assert paid.status_code == 200, paid.text
    verified = await client.post(
        f"/v1/applications/{app_id}/verification",
        json={"outcome": "pass", "reason": "identity confirmed"},
        headers=op,
    )
    assert verified.status_code == 200, verified.text
    for _ in range(150):
        current: dict[str, Any] = (
            await client.get(f"/v1/applications/{app_id}", headers=api_keys.headers("applicant"))
        ).json()
        if current["stage"] == "active":
            return current
        await asyncio.sleep(0.1)
    pytest.fail(f"{app_id} did not become active: {current}")


@pytest.fixture
async def submitted(client: httpx.AsyncClient, pool: asyncpg.Pool, api_keys: Keys) -> dict[str, Any]:
    """A freshly submitted application, in review."""
    body = await application_body(client, pool, api_keys["applicant"])
    response = await submit(client, api_keys, body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    assert created["status"] == "in_review", created
    return created

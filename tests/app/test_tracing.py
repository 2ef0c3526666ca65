"""One trace from POST /v1/applications through the workflow start, the Update,
the activities and their SQL; and no submitted identifier in any span."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from temporalio.worker import Worker

from api.config import ApiSettings
from api.main import create_app
from app import registry, tracing
from app.settings import Settings
from app.temporal import connect
from app.worker import workflow_runner
from tests.api.fixtures import Keys, activate, application_body, submit
from tests.domain.factories import LEGAL_REP_ID, MOBILE, VALID_USCC


@pytest.fixture
async def traced(
    stack_settings: Settings, api_settings: ApiSettings, pool: asyncpg.Pool
) -> AsyncIterator[tuple[httpx.AsyncClient, InMemorySpanExporter]]:
    """The API and a worker on a task queue of their own, both tracing into memory."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    settings = stack_settings.model_copy(update={"temporal_task_queue": f"traced-{uuid.uuid4()}"})
    client = await connect(settings, interceptors=tracing.temporal_interceptors(provider))
    app = create_app(settings, api_settings, tracer_provider=provider)
    try:
        with ThreadPoolExecutor(max_workers=4) as executor:
            worker = Worker(
                client,
                task_queue=settings.temporal_task_queue,
                workflows=list(registry.workflow_classes()),
                activities=list(registry.activity_callables(pool, settings)),
                activity_executor=executor,
                workflow_runner=workflow_runner(),
            )
            async with (
                worker,
                LifespanManager(app),
                httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http,
            ):
                yield http, exporter
    finally:
        tracing.uninstrument_asyncpg()
        provider.shutdown()


def _plain(value: object) -> str:
    # Bytes decoded, so that a name in UTF-8 is found as text.
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if isinstance(value, list | tuple):
        return " ".join(_plain(v) for v in value)
    return str(value)


def _text_of(span: ReadableSpan) -> str:
    parts = [span.name, *(f"{k}={_plain(v)}" for k, v in (span.attributes or {}).items())]
    for event in span.events:
        parts += [event.name, *(f"{k}={_plain(v)}" for k, v in (event.attributes or {}).items())]
    return "\n".join(parts)


async def test_one_trace_runs_from_the_request_to_the_sql_and_carries_no_personal_data(
    traced: tuple[httpx.AsyncClient, InMemorySpanExporter], pool: asyncpg.Pool, api_keys: Keys
) -> None:
    http, exporter = traced
    body = await application_body(http, pool, api_keys["applicant"])
    created = await submit(http, api_keys, body)
    assert created.status_code == 201, created.text
    await activate(http, api_keys, created.json()["id"])

    spans: list[ReadableSpan] = list(exporter.get_finished_spans())
    post = next(
        s
        for s in spans
        if s.name.startswith("POST /v1/applications")
        and not s.name.endswith(("send", "receive"))
        and s.parent is None
    )
    trace_id = post.context.trace_id
    in_trace = [s for s in spans if s.context.trace_id == trace_id]
    names = {s.name for s in in_trace}
    assert any(n.startswith("StartWorkflow:") for n in names), names
    assert any(n.startswith("StartWorkflowUpdate:") for n in names), names
    assert any(n.startswith("RunWorkflow:") for n in names), names
    assert any(n.startswith(("RunActivity:", "StartActivity:")) for n in names), names
    by_id = {s.context.span_id: s for s in in_trace}

    def under_activity(span: ReadableSpan) -> bool:
        parent = span.parent
        while parent is not None and parent.span_id in by_id:
            if by_id[parent.span_id].name.startswith("RunActivity:"):
                return True
            parent = by_id[parent.span_id].parent
        return False

    sql = [
        s
        for s in in_trace
        if (s.attributes or {}).get("db.system") == "postgresql"
        or (s.attributes or {}).get("db.system.name") == "postgresql"
    ]
    assert any(under_activity(s) for s in sql), "no SQL span under an activity of the trace"

    # Nothing the applicant submitted about people or the company, in any span.
    secrets = [
        VALID_USCC,
        LEGAL_REP_ID,
        MOBILE,
        body["legal_representative"]["name"],
        body["company_name"],
        body["contact_address"],
        *body["destination_numbers"],
    ]
    everything = "\n".join(_text_of(s) for s in spans)
    assert len(spans) > 20
    for secret in secrets:
        assert secret not in everything, f"{secret!r} appears in a span"

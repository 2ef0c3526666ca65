"""OpenTelemetry traces: one trace from an HTTP request through the workflow
start or Update it makes, the workflow's activities and their SQL.

Off unless ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set (the standard OpenTelemetry
variables configure the exporter: headers, protocol, ``OTEL_SERVICE_NAME``);
tests pass a provider of their own.

What spans carry: route templates and paths (application ids, never personal
data), SQL text without its parameters (asyncpg's instrumentation is told not to
capture them), workflow and activity names and ids. Request and response bodies,
headers and query parameters of Updates never become attributes.
"""

from __future__ import annotations

import os
from typing import Any

from opentelemetry import trace
from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from temporalio.contrib.opentelemetry import TracingInterceptor

# Probes and scrapes every few seconds would drown the traces that matter.
EXCLUDED_URLS = "healthz,readyz,metrics"


def provider_from_env(default_service: str) -> TracerProvider | None:
    """A provider exporting over OTLP/HTTP when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set."""
    if not os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        return None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    service = os.environ.get("OTEL_SERVICE_NAME") or default_service
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    return provider


def instrument_asyncpg(provider: TracerProvider) -> None:
    """SQL spans for every asyncpg call of the process (a process-wide patch)."""
    instrumentor = AsyncPGInstrumentor(capture_parameters=False)  # type: ignore[no-untyped-call]
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument(tracer_provider=provider)


def uninstrument_asyncpg() -> None:
    AsyncPGInstrumentor().uninstrument()  # type: ignore[no-untyped-call]


def temporal_interceptors(provider: TracerProvider | None) -> list[Any]:
    """The client's interceptors; a worker built on that client inherits them."""
    if provider is None:
        return []
    return [TracingInterceptor(provider.get_tracer("hotline400.temporal"))]

"""Prometheus metrics shared by the API and the worker.

Every metric here lives in prometheus-client's default registry, once per
process; ``/metrics`` on the API and the worker's metrics port serve it.

- HTTP: requests by route template (never the raw path: ids would make the label
  unbounded), method and status; latency; requests in flight; SSE streams open.
- Temporal: the SDK core's own metrics (workflow task latency, schedule-to-start,
  sticky cache, activity failures, pollers...) recorded into a ``MetricBuffer``
  and re-exposed here, so that one scrape of a process shows everything about it.
- Carrier calls: outcome and latency per carrier and operation.

Labels never carry an application, registration or organisation id.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import math
import re
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from temporalio.runtime import (
    BUFFERED_METRIC_KIND_COUNTER,
    BUFFERED_METRIC_KIND_GAUGE,
    MetricBuffer,
    MetricBufferDurationFormat,
    Runtime,
    TelemetryConfig,
)

PREFIX = "hotline400_"

HTTP_REQUESTS = Counter(
    f"{PREFIX}http_requests",
    "HTTP requests answered, by route template, method and status",
    ["route", "method", "status"],
)
HTTP_LATENCY = Histogram(
    f"{PREFIX}http_request_duration_seconds",
    "Time to answer an HTTP request (to the response headers for event streams)",
    ["route", "method", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20),
)
HTTP_IN_FLIGHT = Gauge(f"{PREFIX}http_requests_in_flight", "HTTP requests being served now")
SSE_STREAMS = Gauge(f"{PREFIX}sse_streams_open", "Server-Sent Events streams open now")

CARRIER_CALLS = Counter(
    f"{PREFIX}carrier_calls",
    "Calls to a carrier's interface, by carrier, operation and outcome "
    "(ok, unavailable: retried, rejected: final, error: unexpected)",
    ["carrier", "operation", "outcome"],
)
CARRIER_LATENCY = Histogram(
    f"{PREFIX}carrier_call_duration_seconds",
    "Time a carrier took to answer, by carrier and operation",
    ["carrier", "operation"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)

_CONVERTOR = re.compile(r"\{(\w+):\w+\}")


def route_template(route: object) -> str | None:
    """The path template of a matched route, as OpenAPI spells it: a parameter's
    convertor (``{application_id:application_id}``) left out."""
    path = getattr(route, "path", None)
    return _CONVERTOR.sub(r"{\1}", path) if isinstance(path, str) else None


# What a request that matched no route is counted under: the raw path would let
# any client create label values.
UNMATCHED_ROUTE = "unmatched"


class HttpMetricsMiddleware:
    """Counts and times every HTTP request by the template of the route it
    matched (FastAPI puts the route in the scope while routing)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets if the app raises before answering
        streaming = False
        answered_after: float | None = None

        async def observe(message: Message) -> None:
            nonlocal status, streaming, answered_after
            if message["type"] == "http.response.start":
                status = message["status"]
                answered_after = time.perf_counter() - started
                content_type = dict(message.get("headers", [])).get(b"content-type", b"")
                if content_type.startswith(b"text/event-stream"):
                    streaming = True
                    SSE_STREAMS.inc()
            await send(message)

        HTTP_IN_FLIGHT.inc()
        try:
            await self.app(scope, receive, observe)
        finally:
            HTTP_IN_FLIGHT.dec()
            if streaming:
                SSE_STREAMS.dec()
            route = scope.get("route")
            template = route_template(route)
            # A mounted app (the console) routes below its mount point: its
            # /login is not the API's.
            template = scope.get("root_path", "") + template if template else UNMATCHED_ROUTE
            method = scope["method"]
            elapsed = answered_after if streaming and answered_after is not None else None
            HTTP_REQUESTS.labels(template, method, str(status)).inc()
            HTTP_LATENCY.labels(template, method, str(status)).observe(
                elapsed if elapsed is not None else time.perf_counter() - started
            )


# --- Temporal SDK metrics -------------------------------------------------------

# Seconds; the SDK's own defaults in its Prometheus exporter, plus a few longer ones.
_TEMPORAL_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
_TEMPORAL_PREFIX = "temporal_"


@dataclass
class Buckets:
    """A histogram kept by hand, for collectors that yield families at scrape
    time: counts per upper bound (the last one +Inf) and the sum."""

    bounds: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0

    def __post_init__(self) -> None:
        if not self.counts:
            self.counts = [0] * (len(self.bounds) + 1)

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value

    def cumulative(self) -> list[tuple[str, float]]:
        """What ``HistogramMetricFamily.add_metric`` takes as buckets."""
        out, running = [], 0
        for bound, count in zip((*self.bounds, math.inf), self.counts, strict=True):
            running += count
            out.append(("+Inf" if math.isinf(bound) else repr(float(bound)), float(running)))
        return out


@dataclass
class _Family:
    kind: int
    description: str
    unit: str | None
    series: dict[tuple[tuple[str, str], ...], Any] = field(default_factory=dict)


class TemporalMetrics(Collector):
    """The SDK core's metrics, drained from its ``MetricBuffer`` and exposed in
    Prometheus form. Counters are deltas in the buffer and summed here; gauges
    keep their last value; histogram values are bucketed here (durations come in
    seconds). Drained on every scrape and once a second in between, so the
    buffer never fills however rarely Prometheus comes."""

    def __init__(self, buffer: MetricBuffer) -> None:
        self._buffer = buffer
        self._families: dict[str, _Family] = {}
        self._lock = threading.Lock()

    def drain(self) -> None:
        with self._lock:
            for update in self._buffer.retrieve_updates():
                metric = update.metric
                name = _TEMPORAL_PREFIX + metric.name.removeprefix(_TEMPORAL_PREFIX)
                family = self._families.get(name)
                if family is None:
                    family = _Family(int(metric.kind), metric.description or name, metric.unit)
                    self._families[name] = family
                labels = tuple(sorted((str(k), str(v)) for k, v in update.attributes.items()))
                if family.kind == int(BUFFERED_METRIC_KIND_COUNTER):
                    family.series[labels] = family.series.get(labels, 0) + update.value
                elif family.kind == int(BUFFERED_METRIC_KIND_GAUGE):
                    family.series[labels] = update.value
                else:
                    histogram = family.series.get(labels)
                    if histogram is None:
                        histogram = family.series[labels] = Buckets(_TEMPORAL_BUCKETS)
                    histogram.observe(float(update.value))

    def collect(self) -> Iterable[Metric]:
        self.drain()
        with self._lock:
            return list(self._families_out())

    def _families_out(self) -> Iterator[Metric]:
        for name, family in sorted(self._families.items()):
            for label_names, samples in _by_label_names(family.series):
                if family.kind == int(BUFFERED_METRIC_KIND_COUNTER):
                    counter = CounterMetricFamily(name, family.description, labels=label_names)
                    for values, value in samples:
                        counter.add_metric(values, value)
                    yield counter
                elif family.kind == int(BUFFERED_METRIC_KIND_GAUGE):
                    gauge = GaugeMetricFamily(name, family.description, labels=label_names)
                    for values, value in samples:
                        gauge.add_metric(values, value)
                    yield gauge
                else:
                    out = HistogramMetricFamily(name, family.description, labels=label_names)
                    for values, histogram in samples:
                        out.add_metric(values, histogram.cumulative(), histogram.total)
                    yield out


def _by_label_names(
    series: dict[tuple[tuple[str, str], ...], Any],
) -> Iterator[tuple[list[str], list[tuple[list[str], Any]]]]:
    # One family per set of label names: a Prometheus family may not mix them.
    groups: dict[tuple[str, ...], list[tuple[list[str], Any]]] = {}
    for labels, value in series.items():
        groups.setdefault(tuple(k for k, _ in labels), []).append(([v for _, v in labels], value))
    for names, samples in groups.items():
        yield list(names), samples


@lru_cache(maxsize=1)
def temporal_metrics() -> TemporalMetrics:
    """The process's Temporal runtime, recording into a buffer that the default
    registry exposes. One per process: the SDK's runtime is process-wide (its
    own threads), and every client and worker of the process shares it."""
    buffer = MetricBuffer(100_000, MetricBufferDurationFormat.SECONDS)
    runtime = Runtime(telemetry=TelemetryConfig(metrics=buffer))
    collector = TemporalMetrics(buffer)
    collector.runtime = runtime  # type: ignore[attr-defined]
    REGISTRY.register(collector)
    return collector


def temporal_runtime() -> Runtime:
    runtime: Runtime = temporal_metrics().runtime  # type: ignore[attr-defined]
    return runtime


async def drain_temporal_metrics_forever(interval: float = 1.0) -> None:
    """Keeps the SDK's buffer drained between scrapes."""
    collector = temporal_metrics()
    while True:
        with contextlib.suppress(Exception):
            collector.drain()
        await asyncio.sleep(interval)


# --- Carrier calls --------------------------------------------------------------


@contextlib.contextmanager
def carrier_call(carrier: str, operation: str) -> Iterator[None]:
    """Counts one carrier call by how it ended, and times it."""
    from activities.carrier import CarrierRejected, CarrierUnavailable

    started = time.perf_counter()
    outcome = "ok"
    try:
        yield
    except CarrierUnavailable:
        outcome = "unavailable"
        raise
    except CarrierRejected:
        outcome = "rejected"
        raise
    except BaseException:
        outcome = "error"
        raise
    finally:
        CARRIER_CALLS.labels(carrier, operation, outcome).inc()
        CARRIER_LATENCY.labels(carrier, operation).observe(time.perf_counter() - started)

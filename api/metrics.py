"""``GET /metrics``: the process's metrics (app/metrics.py) and the domain's.

Domain metrics come from the read model and the event log, refreshed at most
every ``max_age`` seconds whatever the scrape rate: one aggregate of the
registration table, and a tail of the event log past the last position read (so
a refresh reads only what is new). Counters start at zero with the process, as
Prometheus counters do; every API replica reports the same figures, so queries
take ``max`` over instances rather than ``sum``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable

import asyncpg
from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from api.readiness import WorkflowHealth
from api.repositories import metrics as repo
from app.metrics import PREFIX, Buckets

log = logging.getLogger("api.metrics")

router = APIRouter(tags=["health"])

# Review time, submitted (or resubmitted) to decided: hours to weeks.
REVIEW_BUCKETS = tuple(h * 3600.0 for h in (1, 4, 8, 24, 48, 72, 120, 168, 336))
_TAIL_BATCH = 10_000


def lifecycle_label(row: asyncpg.Record) -> str:
    """The lifecycle of a read-model row: its ``lifecycle`` column."""
    return str(row["lifecycle"])


class DomainMetrics(Collector):
    def __init__(self, pool: asyncpg.Pool, health: WorkflowHealth | None, max_age: float = 15.0) -> None:
        self.pool = pool
        self.health = health
        self.max_age = max_age
        self._lock = asyncio.Lock()
        self._refreshed_at: float | None = None
        self._position: int | None = None
        self.registrations: dict[tuple[str, str], int] = {}
        self.overdue: dict[tuple[str, str], int] = {}
        self.billing_runs: dict[str, int] = {}
        self.arrears: dict[tuple[str, str], int] = {}
        self.reviews: dict[tuple[str, str], Buckets] = {}
        self.imports: tuple[int, int, int] = (0, 0, 0)
        self.refresh_seconds = 0.0
        self.refresh_failures = 0

    async def refresh_if_stale(self) -> None:
        async with self._lock:
            if self._refreshed_at is not None and time.monotonic() - self._refreshed_at < self.max_age:
                return
            started = time.perf_counter()
            try:
                async with self.pool.acquire(timeout=2) as conn:
                    await self._refresh(conn)
            except Exception as exc:  # noqa: BLE001 - the scrape still answers, with the last figures
                self.refresh_failures += 1
                log.warning("domain metrics not refreshed", extra={"error": type(exc).__name__})
            self._refreshed_at = time.monotonic()
            self.refresh_seconds = time.perf_counter() - started

    async def _refresh(self, conn: asyncpg.Connection) -> None:
        registrations: dict[tuple[str, str], int] = {}
        overdue: dict[tuple[str, str], int] = {}
        for row in await repo.registration_counts(conn):
            carrier = row["carrier_code"]
            key = (lifecycle_label(row), carrier)
            registrations[key] = registrations.get(key, 0) + row["n"]
            # Zero for every stage and carrier that has registrations, so that a
            # query sees "none overdue" rather than no data.
            stage_key = (row["stage"], carrier)
            overdue[stage_key] = overdue.get(stage_key, 0) + (row["n"] if row["overdue"] else 0)
            self.billing_runs.setdefault(carrier, 0)
            for kind in repo.ARREARS:
                self.arrears.setdefault((carrier, kind), 0)
            for kind in repo.REVIEW_ENDINGS:
                self.reviews.setdefault((carrier, kind), Buckets(REVIEW_BUCKETS))
        self.registrations, self.overdue = registrations, overdue
        imports = await repo.import_progress(conn)
        if imports is not None:
            self.imports = (int(imports["running"]), int(imports["pending"]), int(imports["inserted"]))
        if self._position is None:
            # Counters count from now: history before the process is not re-read.
            self._position = await repo.last_position(conn)
            return
        while True:
            rows = await repo.events_after(conn, self._position, repo.TAILED, _TAIL_BATCH)
            for row in rows:
                self._count(row)
            if rows:
                self._position = rows[-1]["position"]
            if len(rows) < _TAIL_BATCH:
                break
        # Events of other types since: skip them, a batch at a time, so the next
        # tail starts near the end. (An insert that commits after a younger one
        # can be passed over: a metric may miss an event, the log never does.)
        skipped = await repo.max_position_scanned(conn, self._position, _TAIL_BATCH * 10)
        if skipped is not None and not rows:
            self._position = max(self._position, skipped)

    def _count(self, row: asyncpg.Record) -> None:
        carrier = row["carrier_code"] or "unknown"
        kind = row["event_type"]
        if kind in repo.BILLING:
            self.billing_runs[carrier] = self.billing_runs.get(carrier, 0) + 1
        elif kind in repo.ARREARS:
            self.arrears[(carrier, kind)] = self.arrears.get((carrier, kind), 0) + 1
        elif kind in repo.REVIEW_ENDINGS and row["review_seconds"] is not None:
            histogram = self.reviews.setdefault((carrier, kind), Buckets(REVIEW_BUCKETS))
            histogram.observe(max(0.0, float(row["review_seconds"])))

    def collect(self) -> Iterable[Metric]:
        registrations = GaugeMetricFamily(
            f"{PREFIX}registrations",
            "Registrations by lifecycle state and carrier (read model)",
            labels=["lifecycle", "carrier"],
        )
        for (lifecycle, carrier), n in sorted(self.registrations.items()):
            registrations.add_metric([lifecycle, carrier], n)
        yield registrations
        overdue = GaugeMetricFamily(
            f"{PREFIX}registrations_overdue",
            "Registrations past the deadline of their current stage (audit: review target)",
            labels=["stage", "carrier"],
        )
        for (stage, carrier), n in sorted(self.overdue.items()):
            overdue.add_metric([stage, carrier], n)
        yield overdue
        reviews = HistogramMetricFamily(
            f"{PREFIX}review_duration_seconds",
            "Time from submission (or resubmission) to the operator's decision",
            labels=["carrier", "decision"],
        )
        for (carrier, kind), histogram in sorted(self.reviews.items()):
            reviews.add_metric([carrier, kind], histogram.cumulative(), histogram.total)
        yield reviews
        billing = CounterMetricFamily(
            f"{PREFIX}billing_runs", "Monthly bills charged to numbers in service", labels=["carrier"]
        )
        for carrier, n in sorted(self.billing_runs.items()):
            billing.add_metric([carrier], n)
        yield billing
        arrears = CounterMetricFamily(
            f"{PREFIX}arrears_transitions",
            "Arrears steps taken (grace, restricted, suspended, frozen, cleared, reclaimed)",
            labels=["carrier", "event"],
        )
        for (carrier, kind), n in sorted(self.arrears.items()):
            arrears.add_metric([carrier, kind], n)
        yield arrears
        running, pending, inserted = self.imports
        yield GaugeMetricFamily(f"{PREFIX}number_imports_running", "Number imports under way", value=running)
        yield GaugeMetricFamily(
            f"{PREFIX}number_import_pending_numbers",
            "Numbers covered by the imports under way",
            value=pending,
        )
        yield GaugeMetricFamily(
            f"{PREFIX}numbers_imported", "Numbers added to the inventory by finished imports", value=inserted
        )
        yield GaugeMetricFamily(
            f"{PREFIX}domain_metrics_refresh_seconds",
            "How long the last refresh of the domain metrics took",
            value=self.refresh_seconds,
        )
        if self.health is not None:
            yield from _health_metrics(self.health)


def _health_metrics(health: WorkflowHealth) -> Iterable[Metric]:
    up = GaugeMetricFamily(f"{PREFIX}temporal_up", "1 when Temporal answered the last check")
    up.add_metric([], 1.0 if health.temporal_ok else 0.0)
    yield up
    pollers = GaugeMetricFamily(
        f"{PREFIX}task_queue_pollers",
        "Workers seen polling the registrations' task queue, by kind of task",
        labels=["task_type"],
    )
    for kind in ("workflow", "activity"):
        found = health.pollers.get(kind)
        pollers.add_metric([kind], float(found.live) if found else 0.0)
    yield pollers


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    domain: DomainMetrics = request.app.state.domain_metrics
    await domain.refresh_if_stale()
    registry: CollectorRegistry = request.app.state.metrics_registry
    body = generate_latest(REGISTRY) + generate_latest(registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)

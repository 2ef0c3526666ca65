"""Alert rules and the Grafana dashboard read metrics that exist.

Every expression in deploy/prometheus/alerts.yml and in the dashboard's panels is
parsed (promql-parser), and every metric it selects must appear in a real scrape
of the API's /metrics and of the worker's metrics port, taken after a worker has
run registrations, one failing workflow task and one failing activity attempt
(the SDK declares a metric only once it is first recorded). Label matchers must
name labels the metric has.
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import httpx
import promql_parser
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from temporalio import activity, workflow
from temporalio.common import RetryPolicy
from temporalio.worker import Worker

from app.embedded import free_port
from app.settings import PROJECT_ROOT, Settings
from app.temporal import connect
from app.worker import serve_metrics
from tests.api.fixtures import Keys, activate

ALERTS = PROJECT_ROOT / "deploy" / "prometheus" / "alerts.yml"
DASHBOARD = PROJECT_ROOT / "deploy" / "grafana" / "dashboards" / "hotline400.json"

REQUIRED_ALERTS = {
    "ReviewsPastTarget",
    "CarrierErrorRate",
    "WorkflowTaskFailures",
    "WorkflowScheduleToStartHigh",
    "NoWorkerPolling",
    "WebhookEndpointsDisabled",
    "CalendarYearMissing",
}

_failed_tasks: set[str] = set()


@activity.defn(name="alerts.flaky")
async def flaky() -> str:
    if activity.info().attempt == 1:
        raise RuntimeError("first attempt fails on purpose")
    return "ok"


@workflow.defn(name="AlertsFailOnce", sandboxed=False)
class FailOnce:
    @workflow.run
    async def run(self) -> str:
        run_id = workflow.info().run_id
        if run_id not in _failed_tasks:
            _failed_tasks.add(run_id)
            raise RuntimeError("first workflow task fails on purpose")
        return await workflow.execute_activity(
            flaky,
            start_to_close_timeout=timedelta(seconds=10),
            retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=100)),
        )


def _rules() -> list[dict[str, Any]]:
    data = yaml.safe_load(ALERTS.read_text())
    return [rule for group in data["groups"] for rule in group["rules"]]


def _panel_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def _selectors(expr: str) -> Iterator[tuple[str, set[str]]]:
    """(metric name, label names matched) of every selector in ``expr``."""
    found: list[tuple[str, set[str]]] = []

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            labels = {m.name for m in node.matchers.matchers if m.name != "__name__"}
            found.append((node.name or "", labels))

    promql_parser.walk(promql_parser.parse(expr), visit)
    yield from found


@pytest.fixture
async def scraped(
    stack_settings: Settings, client: httpx.AsyncClient, api_keys: Keys, submitted: dict[str, Any]
) -> dict[str, set[str]]:
    """Metric name -> label names, from the API's and the worker's scrapes."""
    await activate(client, api_keys, submitted["id"])
    queue = f"alerts-{uuid.uuid4()}"
    temporal = await connect(stack_settings)
    with ThreadPoolExecutor(max_workers=1) as executor:
        async with Worker(
            temporal, task_queue=queue, workflows=[FailOnce], activities=[flaky], activity_executor=executor
        ):
            await temporal.execute_workflow(
                FailOnce.run,
                id=f"alerts-{uuid.uuid4()}",
                task_queue=queue,
                execution_timeout=timedelta(seconds=60),
            )
    port = free_port()
    serve_metrics(stack_settings.model_copy(update={"worker_metrics_port": port}))
    worker_text = await asyncio.to_thread(_get, f"http://127.0.0.1:{port}/metrics")
    api_text = (await client.get("/metrics")).text
    names: dict[str, set[str]] = {}
    for text in (api_text, worker_text):
        for family in text_string_to_metric_families(text):
            names.setdefault(family.name, set())
            for sample in family.samples:
                names.setdefault(sample.name, set()).update(sample.labels)
                names[family.name].update(sample.labels)
    return names


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        text: str = response.read().decode()
    return text


def test_alert_rules_are_complete_and_well_formed() -> None:
    rules = _rules()
    assert {r["alert"] for r in rules} >= REQUIRED_ALERTS
    for rule in rules:
        assert rule["labels"]["severity"] in ("info", "warning", "critical"), rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        assert rule["for"], rule["alert"]
        promql_parser.parse(rule["expr"])  # raises on a syntax error
    for expr in _panel_exprs():
        promql_parser.parse(expr)


def test_a_broken_expression_or_unknown_metric_is_caught() -> None:
    with pytest.raises(ValueError):
        promql_parser.parse("sum(rate(hotline400_http_requests_total[5m])")
    assert list(_selectors('max(no_such_metric{stage="audit"}) > 0')) == [("no_such_metric", {"stage"})]


async def test_every_metric_the_alerts_and_dashboard_read_is_exported(scraped: dict[str, set[str]]) -> None:
    problems = []
    for where, expr in [
        *((r["alert"], r["expr"]) for r in _rules()),
        *(("dashboard", e) for e in _panel_exprs()),
    ]:
        for name, labels in _selectors(expr):
            if name not in scraped:
                problems.append(f"{where}: {name} is not in the scrape")
                continue
            known = scraped[name] | {"le", "job", "instance"}
            if labels - known:
                problems.append(f"{where}: {name} has no label {sorted(labels - known)}")
    assert not problems, "\n".join(problems)

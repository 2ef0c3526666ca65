"""/metrics on the API (and the worker's port): HTTP by route template, the
Temporal SDK's metrics, carrier calls and the domain's figures, with bounded labels."""

from __future__ import annotations

import urllib.request
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from temporalio.worker import Worker

from app.embedded import free_port
from app.settings import Settings
from app.worker import serve_metrics
from tests.api.fixtures import Keys


def samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((sample.labels, sample.value))
    return found


def families(text: str) -> set[str]:
    """Every metric family the scrape declares, with and without samples."""
    names = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        names.update(sample.name for sample in family.samples)
    return names


def value(found: dict[str, list[tuple[dict[str, str], float]]], name: str, **labels: str) -> float:
    return sum(v for got, v in found.get(name, []) if labels.items() <= got.items())


async def scrape(client: httpx.AsyncClient) -> str:
    response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


async def test_http_requests_are_counted_by_route_template_never_by_id(
    client: httpx.AsyncClient, api_keys: Keys, submitted: dict[str, Any]
) -> None:
    route = "/v1/applications/{application_id}"
    before = samples(await scrape(client))
    for _ in range(3):
        got = await client.get(f"/v1/applications/{submitted['id']}", headers=api_keys.headers("applicant"))
        assert got.status_code == 200
    missing = await client.get("/v1/applications/app_" + "z" * 24, headers=api_keys.headers("applicant"))
    assert missing.status_code == 404
    await client.get("/no/such/path/" + submitted["id"])
    text = await scrape(client)
    after = samples(text)

    count = "hotline400_http_requests_total"
    assert (
        value(after, count, route=route, status="200") - value(before, count, route=route, status="200") == 3
    )
    assert (
        value(after, count, route=route, status="404") - value(before, count, route=route, status="404") == 1
    )
    assert value(after, count, route="unmatched", status="404") >= 1
    latency = "hotline400_http_request_duration_seconds_count"
    assert (
        value(after, latency, route=route, method="GET") - value(before, latency, route=route, method="GET")
        == 4
    )
    assert (
        value(after, latency, route=route, status="404") - value(before, latency, route=route, status="404")
        == 1
    )
    assert after["hotline400_http_requests_in_flight"]
    assert "hotline400_sse_streams_open" in after
    # Labels stay bounded: no application or organisation id anywhere.
    assert submitted["id"] not in text
    assert api_keys.organisation not in text


async def test_domain_metrics_come_from_the_read_model_and_the_event_log(
    client: httpx.AsyncClient, api_keys: Keys, submitted: dict[str, Any]
) -> None:
    before = samples(await scrape(client))  # the event-log tail starts here
    in_review = value(before, "hotline400_registrations", lifecycle="in_review", carrier="china_unicom")
    assert in_review >= 1
    decided = await client.post(
        f"/v1/applications/{submitted['id']}/decision",
        json={"decision": "approve"},
        headers=api_keys.headers("operator"),
    )
    assert decided.status_code == 200, decided.text
    text = await scrape(client)
    after = samples(text)
    assert (
        value(after, "hotline400_registrations", lifecycle="in_review", carrier="china_unicom")
        == in_review - 1
    )
    assert value(after, "hotline400_registrations", lifecycle="awaiting_payment", carrier="china_unicom") >= 1
    reviews = "hotline400_review_duration_seconds_count"
    labels = {"carrier": "china_unicom", "decision": "ApplicationApproved"}
    assert value(after, reviews, **labels) - value(before, reviews, **labels) == 1
    for name in (
        "hotline400_registrations_overdue",
        "hotline400_billing_runs_total",
        "hotline400_arrears_transitions_total",
        "hotline400_number_imports_running",
        "hotline400_numbers_imported",
    ):
        assert name in families(text), name
    assert value(after, "hotline400_task_queue_pollers", task_type="workflow") >= 1
    assert value(after, "hotline400_temporal_up") == 1


async def test_temporal_sdk_and_carrier_metrics_reach_the_scrape(
    client: httpx.AsyncClient, api_keys: Keys, submitted: dict[str, Any]
) -> None:
    from tests.api.fixtures import activate

    await activate(client, api_keys, submitted["id"])
    found = samples(await scrape(client))
    # The API's client and the worker share the process's runtime here.
    assert value(found, "temporal_request_total", operation="StartWorkflowExecution") >= 1
    assert value(found, "temporal_workflow_task_schedule_to_start_latency_count") >= 1
    assert value(found, "temporal_workflow_task_execution_latency_count") >= 1
    assert "temporal_sticky_cache_size" in found
    assert value(found, "temporal_num_pollers", poller_type="workflow_task") >= 1
    assert (
        value(
            found,
            "hotline400_carrier_calls_total",
            carrier="china_unicom",
            operation="provision",
            outcome="ok",
        )
        >= 1
    )
    assert value(found, "hotline400_carrier_call_duration_seconds_count", operation="provision") >= 1


def test_worker_serves_metrics_on_its_own_port(stack_settings: Settings, api_worker: Worker) -> None:
    port = free_port()
    serve_metrics(stack_settings.model_copy(update={"worker_metrics_port": port}))
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    assert "temporal_num_pollers" in text
    assert "hotline400_carrier_calls" in text

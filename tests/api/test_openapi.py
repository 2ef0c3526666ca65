"""The OpenAPI document is complete: every route, its models, examples and errors."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from domain.requirements import load_catalogue

PUBLIC = {"/healthz", "/readyz"}


@pytest.fixture(scope="module")
async def spec(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/v1/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, op)
        for path, ops in spec["paths"].items()
        for method, op in ops.items()
        if path not in PUBLIC
    ]


def refs(node: Any) -> list[str]:
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                found.append(value)
            else:
                found += refs(value)
    elif isinstance(node, list):
        for item in node:
            found += refs(item)
    return found


def test_every_route_is_versioned(spec: dict[str, Any]) -> None:
    assert {p for p in spec["paths"] if not p.startswith("/v1/")} == PUBLIC
    assert spec["info"]["version"] == "1.0.0"


def test_every_operation_is_documented(spec: dict[str, Any]) -> None:
    for path, method, op in operations(spec):
        where = f"{method.upper()} {path}"
        assert op.get("summary"), where
        assert op.get("operationId"), where
        responses = op["responses"]
        success = [s for s in responses if s.startswith("2")]
        assert success, where
        for status in ("401", "403", "422", "503"):
            assert status in responses, (where, status)
            content = responses[status]["content"]
            assert list(content) == ["application/problem+json"], (where, status)
            assert content["application/problem+json"]["schema"]["$ref"].endswith("/Problem")
        assert "Retry-After" in responses["503"]["headers"], where
        # The codec too: outside development it needs a key (open only under make dev).
        assert op["x-roles"], where
        assert "**Roles:**" in op["description"], where
        assert op["security"] == [{"ApiKey": []}], where
        ok = responses[success[0]]
        assert ok.get("content"), where  # every success has a described body


def test_every_reference_resolves(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    for ref in set(refs(spec)):
        assert ref.startswith("#/components/schemas/"), ref
        assert ref.removeprefix("#/components/schemas/") in schemas, ref


def test_bodies_and_examples(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    submit = spec["paths"]["/v1/applications"]["post"]
    body = submit["requestBody"]["content"]["application/json"]
    assert body["schema"]["$ref"].endswith("/ApplicationRequest")
    assert body["example"]["credit_code"]
    request = schemas["ApplicationRequest"]
    assert "organisation_id" not in request["required"]
    assert {"credit_code", "legal_representative", "documents"} <= set(request["properties"])
    assert schemas["DocumentRefRequest"]["required"] == ["document_id"]
    headers = {p["name"] for p in submit["parameters"] if p["in"] == "header"}
    assert "Idempotency-Key" in headers
    for name in ("Registration", "Problem", "Document", "NumberOut", "Requirements", "Evaluation"):
        assert "example" in schemas[name] or "examples" in schemas[name], name
    assert "FeedEvent" in schemas
    assert spec["components"]["securitySchemes"]["ApiKey"]["scheme"] == "bearer"
    decision = spec["paths"]["/v1/applications/{application_id}/decision"]["post"]
    assert "409" in decision["responses"] and "404" in decision["responses"]


SERVICE_ACTIONS = {
    "suspension": ("SuspensionIn", "Registration"),
    "resumption": ("ResumptionIn", "Registration"),
    "realname-confirmation": ("RealnameConfirmationIn", "Registration"),
    "termination": ("TerminationIn", "Registration"),
    "details-changes": ("DetailsChangeIn", "DetailsChangeOut"),
}


@pytest.mark.parametrize("action", sorted(SERVICE_ACTIONS))
def test_service_actions_are_documented(spec: dict[str, Any], action: str) -> None:
    schemas = spec["components"]["schemas"]
    body_model, response_model = SERVICE_ACTIONS[action]
    op = spec["paths"][f"/v1/applications/{{application_id}}/{action}"]["post"]
    assert {"404", "409"} <= set(op["responses"]), action
    ok = op["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok["$ref"].endswith(f"/{response_model}"), action
    body = op["requestBody"]["content"]["application/json"]["schema"]
    assert body_model in str(body), action
    assert "example" in schemas[body_model], action
    path_parameter = next(p for p in op["parameters"] if p["name"] == "application_id")
    assert path_parameter["schema"]["pattern"].startswith("^app_"), action
    assert op["tags"], action
    registration = schemas["Registration"]
    assert "service_state" in registration["properties"]
    assert "service_state" not in registration.get("required", [])


def test_the_document_says_what_the_server_checks(spec: dict[str, Any]) -> None:
    """Each of these disagreed with the server (issue 12, item 13)."""
    schemas = spec["components"]["schemas"]
    paths = spec["paths"]
    # Idempotency-Key: the server refuses requests without it.
    for path in ("/v1/applications", "/v1/applications/{application_id}/payments"):
        [key] = [p for p in paths[path]["post"]["parameters"] if p["name"] == "Idempotency-Key"]
        assert key["required"] is True, path
    # The catalogue's keys are enums on the server: in the document too.
    catalogue = load_catalogue()
    request = schemas["ApplicationRequest"]["properties"]
    assert request["carrier"]["enum"] == list(catalogue.carrier_codes)
    for name, attribute in (("company_type", "company_types"), ("industry", "industries")):
        assert set(request[name]["enum"]) == {
            v for c in catalogue.carriers.values() for v in getattr(c, attribute)
        }, name
    assert schemas["DocumentRefRequest"]["properties"]["kind"]["enum"] == list(catalogue.document_kinds)
    query = {p["name"]: p["schema"] for p in paths["/v1/requirements"]["get"]["parameters"]}
    assert query["carrier"]["enum"] == list(catalogue.carrier_codes)
    assert query["industry"]["enum"] == request["industry"]["enum"]
    # Every decision example is a whole decision the server takes (see the test below).
    examples = paths["/v1/applications/{application_id}/decision"]["post"]["requestBody"]["content"][
        "application/json"
    ]["examples"]
    assert set(examples) == {"approve", "reject", "request_changes"}
    assert "examples" not in schemas["DecisionIn"]
    # The schema of the event stream is that of one event, whose data is a FeedEvent in JSON.
    stream = paths["/v1/events"]["get"]["responses"]["200"]["content"]["text/event-stream"]["schema"]
    assert set(stream["properties"]) == {"id", "event", "data", "retry"}
    assert stream["properties"]["data"]["contentMediaType"] == "application/json"
    assert stream["properties"]["data"]["contentSchema"]["$ref"].endswith("/FeedEvent")
    last_event_id = next(p for p in paths["/v1/events"]["get"]["parameters"] if p["name"] == "Last-Event-ID")
    assert last_event_id["schema"]["anyOf"][0]["pattern"] == "^[0-9]{1,19}$"
    # Raw JSON bodies: 415 for another media type. Throttling: 429 with Retry-After.
    for path in (
        "/v1/applications",
        "/v1/applications/evaluate",
        "/v1/applications/{application_id}/resubmit",
    ):
        assert "415" in paths[path]["post"]["responses"], path
    for path, method, op in operations(spec):
        assert "Retry-After" in op["responses"]["429"]["headers"], (method, path)
    # Unreadable or invalid input is a 422 naming the field; the one 400 is a cursor
    # reused with other filters (the request is not wrong in itself, the pairing is).
    bad_requests = {(method, path) for path, method, op in operations(spec) if "400" in op["responses"]}
    assert all(
        "cursor" in {p["name"] for p in spec["paths"][path][method].get("parameters", [])}
        for method, path in bad_requests
    ), bad_requests

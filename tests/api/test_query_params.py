"""Query parameters with a fixed set of values are refused the same way
everywhere (422 naming the parameter and the values it takes), and a cursor only
continues the listing it came from."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx
import pytest

from tests.api.fixtures import PREFIX, Keys, application_body, submit
from tests.factories_inventory import add_fresh_numbers

CARRIERS = "china_mobile, china_telecom, china_unicom, unassigned"


@pytest.mark.parametrize(
    ("path", "role", "param", "value", "allowed"),
    [
        ("/v1/numbers", "applicant", "carrier", "china_tietong", CARRIERS),
        ("/v1/numbers", "applicant", "tier", "diamond", "economy, standard, bronze, silver, gold, premium"),
        ("/v1/numbers", "applicant", "tags", "unlucky", "aaa_end, aaaa, aaaaa"),
        ("/v1/registrations", "viewer", "carrier", "china_tietong", CARRIERS),
        ("/v1/registrations", "viewer", "stage", "done", "apply, audit, allocate"),
        ("/v1/registrations", "viewer", "status", "done", "submitted, in_review"),
        ("/v1/registrations", "viewer", "order", "sideways", "desc, asc"),
        ("/v1/registrations/stats", "viewer", "carrier", "china_tietong", CARRIERS),
        ("/v1/review-queue", "operator", "carrier", "china_tietong", CARRIERS),
        ("/v1/applications", "applicant", "stage", "done", "apply, audit, allocate"),
        ("/v1/applications", "applicant", "status", "done", "submitted, in_review"),
        ("/v1/events", "viewer", "types", "NoSuchEvent", "ApplicationSubmitted, ApplicationRefused"),
    ],
)
async def test_every_enum_parameter_is_refused_the_same_way(
    client: httpx.AsyncClient, api_keys: Keys, path: str, role: str, param: str, value: str, allowed: str
) -> None:
    response = await client.get(path, params={param: value}, headers=api_keys.headers(role))
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["code"] == "invalid_input"
    (error,) = problem["errors"]
    assert (error["field"], error["code"]) == (param, "invalid_choice")
    assert error["message"].startswith(f"Unknown value '{value}': use one of {allowed}"), error["message"]


async def test_known_values_are_accepted(client: httpx.AsyncClient, api_keys: Keys) -> None:
    cases: list[tuple[str, str, dict[str, str | int]]] = [
        ("/v1/numbers", "applicant", {"carrier": "china_unicom", "tier": "standard", "limit": 1}),
        ("/v1/registrations", "viewer", {"carrier": "china_unicom", "stage": "audit", "limit": 1}),
        ("/v1/registrations/stats", "viewer", {"carrier": "china_unicom"}),
        ("/v1/review-queue", "operator", {"carrier": "china_unicom", "limit": 1}),
    ]
    for path, role, params in cases:
        response = await client.get(path, params=params, headers=api_keys.headers(role))
        assert response.status_code == 200, (path, response.text)


async def _reuse(
    client: httpx.AsyncClient, keys: Keys, role: str, path: str, first: dict[str, Any], other: dict[str, Any]
) -> None:
    headers = keys.headers(role)
    page = await client.get(path, params={**first, "limit": 1}, headers=headers)
    assert page.status_code == 200, page.text
    cursor = page.json()["next_cursor"]
    assert cursor is not None, page.json()
    same = await client.get(path, params={**first, "limit": 1, "cursor": cursor}, headers=headers)
    assert same.status_code == 200, same.text
    assert same.json()["items"][0] != page.json()["items"][0]
    changed = await client.get(path, params={**other, "limit": 1, "cursor": cursor}, headers=headers)
    assert changed.status_code == 400, (path, other, changed.text)
    problem = changed.json()
    assert problem["code"] == "cursor_mismatch"
    assert [e["field"] for e in problem["errors"]] == ["cursor"]


async def test_a_cursor_reused_with_other_filters_is_400(
    client: httpx.AsyncClient, pool: asyncpg.Pool, api_keys: Keys, submitted: dict[str, Any]
) -> None:
    await add_fresh_numbers(pool, 3, prefix=PREFIX)
    await _reuse(client, api_keys, "applicant", "/v1/numbers", {"carrier": "china_unicom"}, {"tier": "gold"})
    await _reuse(
        client, api_keys, "applicant", "/v1/numbers", {"exclude_four": "false"}, {"exclude_four": "true"}
    )
    # Two registrations at least, whatever else the session has made.
    second = await submit(client, api_keys, await application_body(client, pool, api_keys["applicant"]))
    assert second.status_code == 201, second.text
    await _reuse(client, api_keys, "viewer", "/v1/registrations", {}, {"carrier": "china_unicom"})
    await _reuse(
        client, api_keys, "viewer", "/v1/registrations", {"order": "asc"}, {"order": "asc", "overdue": "no"}
    )
    await _reuse(client, api_keys, "applicant", "/v1/applications", {}, {"stage": "audit"})


@pytest.mark.parametrize(
    ("path", "role", "misspelt", "meant"),
    [
        ("/v1/numbers", "applicant", "tag", "tags"),
        ("/v1/numbers", "applicant", "pattern_tag", "tags"),
        ("/v1/registrations", "viewer", "lifecycle_state", "lifecycle"),
        ("/v1/applications", "applicant", "statuss", "status"),
    ],
)
async def test_a_parameter_the_operation_does_not_take_is_refused_not_ignored(
    client: httpx.AsyncClient, api_keys: Keys, path: str, role: str, misspelt: str, meant: str
) -> None:
    """Otherwise a misspelt filter answers with the whole unfiltered listing."""
    response = await client.get(path, params={misspelt: "x", "limit": 5}, headers=api_keys.headers(role))
    assert response.status_code == 422, response.text
    [error] = response.json()["errors"]
    assert (error["field"], error["code"]) == (misspelt, "unknown_parameter")
    assert meant in error["message"] and "limit" in error["message"]
    # The parameters it takes still work, and probes stay lenient.
    fine = await client.get(path, params={"limit": 5}, headers=api_keys.headers(role))
    assert fine.status_code == 200, fine.text
    assert (await client.get("/healthz", params={"probe": "1"})).status_code == 200

"""Evaluate runs every check that submit runs, and submit refuses with 422 what it
could have checked before creating anything: the number asked for (requested or
by criteria) and the package."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import httpx

from tests.api.fixtures import PREFIX, Keys, application_body, submit
from tests.factories_inventory import add_fresh_numbers


async def _evaluate(client: httpx.AsyncClient, keys: Keys, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post("/v1/applications/evaluate", json=body, headers=keys.headers("applicant"))
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def _codes(errors: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(e["field"], e["code"]) for e in errors}


async def _applications_named(pool: asyncpg.Pool, company: str) -> int:
    async with pool.acquire() as conn:
        return int(await conn.fetchval("SELECT count(*) FROM application WHERE company_name = $1", company))


async def _criteria_body(
    client: httpx.AsyncClient, pool: asyncpg.Pool, keys: Keys, criteria: dict[str, Any], **overrides: Any
) -> dict[str, Any]:
    company = f"号码检查 {uuid.uuid4().hex[:8]} 有限公司"
    body = await application_body(client, pool, keys["applicant"], company_name=company, **overrides)
    return {**body, "requested_number": None, "number_criteria": criteria}


async def _assert_refused_before_creating(
    client: httpx.AsyncClient, pool: asyncpg.Pool, keys: Keys, body: dict[str, Any], expected: set[Any]
) -> None:
    evaluated = await _evaluate(client, keys, body)
    assert evaluated["submittable"] is False
    assert _codes(evaluated["errors"]) == expected
    submitted = await submit(client, keys, body)
    assert submitted.status_code == 422, submitted.text
    assert _codes(submitted.json()["errors"]) == expected
    assert await _applications_named(pool, body["company_name"]) == 0


async def test_criteria_with_an_unassigned_prefix_are_refused_before_anything_is_created(
    client: httpx.AsyncClient, pool: asyncpg.Pool, api_keys: Keys
) -> None:
    body = await _criteria_body(client, pool, api_keys, {"starts_with": "4005"})
    await _assert_refused_before_creating(
        client, pool, api_keys, body, {("number_criteria.starts_with", "unassigned_prefix")}
    )
    evaluated = await _evaluate(client, api_keys, body)
    # The message says where china_unicom's numbers are (the prefix table is data).
    assert "4000, 4006" in evaluated["errors"][0]["message"]


async def test_criteria_with_another_carriers_prefix_are_refused(
    client: httpx.AsyncClient, pool: asyncpg.Pool, api_keys: Keys
) -> None:
    # 4008 is China Telecom's; typed without 400 as applicants do ("8" after 400).
    for starts_with in ("4008", "8", "40081"):
        body = await _criteria_body(client, pool, api_keys, {"starts_with": starts_with})
        await _assert_refused_before_creating(
            client, pool, api_keys, body, {("number_criteria.starts_with", "carrier_mismatch")}
        )


async def test_criteria_no_available_number_matches_are_refused(
    client: httpx.AsyncClient, pool: asyncpg.Pool, api_keys: Keys
) -> None:
    taken = await application_body(client, pool, api_keys["applicant"])
    assert (await submit(client, api_keys, taken)).status_code == 201
    # Criteria that name exactly the number just held by that application.
    body = await _criteria_body(client, pool, api_keys, {"starts_with": taken["requested_number"]})
    await _assert_refused_before_creating(
        client, pool, api_keys, body, {("number_criteria", "number_unavailable")}
    )


async def test_criteria_no_search_accepts_are_named_field_by_field(
    client: httpx.AsyncClient, pool: asyncpg.Pool, api_keys: Keys
) -> None:
    body = await _criteria_body(client, pool, api_keys, {"tier": "diamond", "pattern_tag": "lucky"})
    await _assert_refused_before_creating(
        client,
        pool,
        api_keys,
        body,
        {("number_criteria.tier", "invalid_criteria"), ("number_criteria.pattern_tag", "invalid_criteria")},
    )


async def test_criteria_that_match_are_submittable_and_hold_a_matching_number(
    client: httpx.AsyncClient, pool: asyncpg.Pool, api_keys: Keys
) -> None:
    (number,) = await add_fresh_numbers(pool, 1, prefix=PREFIX)
    body = await _criteria_body(client, pool, api_keys, {"starts_with": number[3:]})
    assert await _evaluate(client, api_keys, body) == {
        "submittable": True,
        "errors": [],
        "errors_omitted": 0,
        "required_documents": ["business_licence", "legal_rep_id", "application_form"],
    }
    created = await submit(client, api_keys, body)
    assert created.status_code == 201, created.text
    assert (created.json()["status"], created.json()["number"]) == ("in_review", number)


async def test_an_unknown_requested_number_is_reported_with_the_other_errors(
    client: httpx.AsyncClient, pool: asyncpg.Pool, api_keys: Keys
) -> None:
    body = await application_body(client, pool, api_keys["applicant"], contact_address="")
    # 4005 is an unassigned prefix: nothing loads its numbers in the test database.
    body["requested_number"] = f"4005{uuid.uuid4().int % 10**6:06d}"
    evaluated = await _evaluate(client, api_keys, body)
    assert _codes(evaluated["errors"]) == {
        ("contact_address", "required"),
        ("requested_number", "number_not_found"),
    }
    submitted = await submit(client, api_keys, body)
    assert submitted.status_code == 422
    assert _codes(submitted.json()["errors"]) == _codes(evaluated["errors"])


async def test_an_unknown_package_is_422_naming_package(
    client: httpx.AsyncClient, pool: asyncpg.Pool, api_keys: Keys
) -> None:
    company = f"套餐检查 {uuid.uuid4().hex[:8]} 有限公司"
    body = await application_body(client, pool, api_keys["applicant"], company_name=company)
    body["package"] = "platinum-xyz"
    await _assert_refused_before_creating(client, pool, api_keys, body, {("package", "unknown_package")})
    evaluated = await _evaluate(client, api_keys, body)
    assert "basic, standard, business, premium" in evaluated["errors"][0]["message"]

    body["package"] = "Business"  # codes are matched without regard to case
    assert (await _evaluate(client, api_keys, body))["submittable"] is True


async def test_packages_are_listed_by_the_catalogue_and_in_openapi(
    client: httpx.AsyncClient, api_keys: Keys
) -> None:
    catalogue = (await client.get("/v1/requirements/catalogue", headers=api_keys.headers("applicant"))).json()
    codes = [p["code"] for p in catalogue["packages"]]
    assert codes == ["basic", "standard", "business", "premium"]
    assert all(p["label"] for p in catalogue["packages"])
    spec = (await client.get("/v1/openapi.json")).json()
    package = spec["components"]["schemas"]["ApplicationRequest"]["properties"]["package"]
    assert package["enum"] == codes

"""The requirements catalogue and number search."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx

from tests.api.fixtures import Keys
from tests.factories_inventory import add_fresh_numbers


async def test_requirements_for_a_case(client: httpx.AsyncClient, api_keys: Keys) -> None:
    response = await client.get(
        "/v1/requirements",
        params={
            "carrier": "china_telecom",
            "company_type": "enterprise",
            "industry": "medical",
            "has_agent": True,
        },
        headers=api_keys.headers("applicant"),
    )
    assert response.status_code == 200
    body = response.json()
    assert [d["kind"] for d in body["documents"]] == [
        "business_licence",
        "legal_rep_id",
        "agent_id",
        "authorisation_letter",
        "application_form",
        "industry_licence",
    ]
    assert all(d["label"] for d in body["documents"])
    assert body["accepted_content_types"] == ["application/pdf", "image/jpeg", "image/png"]
    assert body["max_upload_bytes"] == 64 * 1024


async def test_unknown_case_names_each_field(client: httpx.AsyncClient, api_keys: Keys) -> None:
    response = await client.get(
        "/v1/requirements",
        params={"carrier": "china_unicom", "company_type": "cooperative", "industry": "gambling"},
        headers=api_keys.headers("viewer"),
    )
    assert response.status_code == 422
    errors = {e["field"]: e for e in response.json()["errors"]}
    assert set(errors) == {"company_type", "industry"}
    assert "enterprise" in errors["company_type"]["message"]
    missing = await client.get("/v1/requirements", headers=api_keys.headers("viewer"))
    assert {e["field"] for e in missing.json()["errors"]} == {"carrier", "company_type", "industry"}


async def test_catalogue_lists_the_options(client: httpx.AsyncClient, api_keys: Keys) -> None:
    body = (await client.get("/v1/requirements/catalogue", headers=api_keys.headers("viewer"))).json()
    assert {c["code"] for c in body["carriers"]} == {"china_unicom", "china_telecom", "china_mobile"}
    assert "industry_licence" in {d["kind"] for d in body["document_kinds"]}


async def search(
    client: httpx.AsyncClient, keys: Keys, role: str = "applicant", **params: Any
) -> httpx.Response:
    return await client.get("/v1/numbers", params=params, headers=keys.headers(role))


async def test_search_filters_and_pages(
    client: httpx.AsyncClient, pool: asyncpg.Pool, api_keys: Keys
) -> None:
    # A private 7-digit block so that the results are exactly what this test added.
    prefix = "4000999"
    numbers = sorted(await add_fresh_numbers(pool, 5, prefix=prefix))
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"starts_with": prefix, "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await search(client, api_keys, **params)).json()
        seen += [n["number"] for n in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [n for n in seen if n in numbers] == numbers
    assert all(n.startswith(prefix) for n in seen)
    item = (await search(client, api_keys, starts_with=numbers[0], limit=1)).json()["items"][0]
    assert item["display"] == f"400-{numbers[0][3:6]}-{numbers[0][6:]}"
    assert item["carrier"] == "china_unicom"
    assert item["registration_id"] is None  # holder details are for staff

    ends = (await search(client, api_keys, ends_with=numbers[0][-4:], starts_with="4000")).json()["items"]
    assert numbers[0] in {n["number"] for n in ends}
    no_four = (await search(client, api_keys, starts_with=prefix, exclude_four=True)).json()["items"]
    assert all("4" not in n["number"][3:] for n in no_four)
    sampled = (await search(client, api_keys, starts_with=prefix, sample=True, limit=2)).json()
    assert sampled["sampled"] is True


async def test_search_input_errors_are_422(client: httpx.AsyncClient, api_keys: Keys) -> None:
    for params, field in (
        ({"tier": "platinum"}, "tier"),
        ({"starts_with": "8888"}, "starts_with"),
        ({"contains": "12345678"}, "contains"),
        ({"tags": "unlucky"}, "tags"),
        ({"limit": 0}, "limit"),
        ({"cursor": "???"}, "cursor"),
        ({"max_monthly_spend_fen": -1}, "max_monthly_spend_fen"),
    ):
        response = await search(client, api_keys, **params)
        assert response.status_code == 422, (params, response.text)
        assert field in {e["field"] for e in response.json()["errors"]}, (params, response.json())


async def test_only_staff_see_unavailable_numbers(client: httpx.AsyncClient, api_keys: Keys) -> None:
    assert (await search(client, api_keys, include_unavailable=True)).status_code == 403
    staff = await search(client, api_keys, "viewer", include_unavailable=True, limit=5)
    assert staff.status_code == 200


async def test_one_number(client: httpx.AsyncClient, pool: asyncpg.Pool, api_keys: Keys) -> None:
    (number,) = await add_fresh_numbers(pool, 1, prefix="4000")
    dashed = f"{number[:3]}-{number[3:6]}-{number[6:]}"
    response = await client.get(f"/v1/numbers/{dashed}", headers=api_keys.headers("applicant"))
    assert response.json()["number"] == number
    for malformed in ("4000", "4090000000"):
        response = await client.get(f"/v1/numbers/{malformed}", headers=api_keys.headers("applicant"))
        assert response.status_code == 422, malformed
    async with pool.acquire() as conn:
        taken = {
            r["number"]
            for r in await conn.fetch("SELECT number FROM number_inventory WHERE number LIKE '4003%'")
        }
    absent = next(n for n in (f"4003{i:06d}" for i in range(999_999, 0, -7)) if n not in taken)
    missing = await client.get(f"/v1/numbers/{absent}", headers=api_keys.headers("applicant"))
    assert missing.status_code == 404
    assert missing.json()["code"] == "not_found"

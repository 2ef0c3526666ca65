"""Every timestamp the API answers is in one form: RFC 3339, UTC, ending in Z,
whatever offset the client sent it with (the OpenAPI description says so)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import asyncpg
import httpx

from tests.api.fixtures import Keys, application_body, submit
from tests.api.test_dashboard import read_stream

# Anything that looks like a date with a time, in any form.
LOOKS_LIKE_A_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")
UTC_Z = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z")


def timestamps(value: Any, path: str = "") -> list[tuple[str, str]]:
    """(path, text) of every string in ``value`` that looks like a timestamp."""
    if isinstance(value, str):
        return [(path, value)] if LOOKS_LIKE_A_TIMESTAMP.search(value) else []
    if isinstance(value, dict):
        return [found for k, v in value.items() for found in timestamps(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [found for i, v in enumerate(value) for found in timestamps(v, f"{path}[{i}]")]
    return []


async def test_every_timestamp_in_the_main_responses_is_utc_with_z(
    client: httpx.AsyncClient, pool: asyncpg.Pool, api_keys: Keys
) -> None:
    # An offset the client chose, within the activation horizon; answered in UTC.
    activation = (datetime.now(UTC) + timedelta(days=30)).astimezone(timezone(timedelta(hours=8)))
    body = await application_body(
        client, pool, api_keys["applicant"], activation_at=activation.replace(microsecond=0).isoformat()
    )
    created = await submit(client, api_keys, body)
    assert created.status_code == 201, created.text
    app_id = created.json()["id"]
    in_review = await submit(client, api_keys, await application_body(client, pool, api_keys["applicant"]))
    assert in_review.status_code == 201, in_review.text  # for the review queue
    op = api_keys.headers("operator")
    changes = await client.post(
        f"/v1/applications/{app_id}/decision",
        json={"decision": "request_changes", "fields": ["contact_address"], "reason": "incomplete"},
        headers=op,
    )
    payment_409 = await client.post(
        f"/v1/applications/{app_id}/payments",
        json={"amount_fen": 100},
        headers=api_keys.headers("applicant", **{"Idempotency-Key": app_id}),
    )
    assert payment_409.status_code == 409  # carries the registration's state
    async with pool.acquire() as conn:
        first = await conn.fetchval("SELECT min(position) FROM domain_event WHERE stream_id = $1", app_id)

    answers: dict[str, Any] = {
        "submit": created.json(),
        "decision": changes.json(),
        "conflict": payment_409.json(),
        "get (applicant)": (
            await client.get(f"/v1/applications/{app_id}", headers=api_keys.headers("applicant"))
        ).json(),
        "get (staff)": (await client.get(f"/v1/applications/{app_id}", headers=op)).json(),
        "timeline": (await client.get(f"/v1/applications/{app_id}/timeline", headers=op)).json(),
        "own list": (await client.get("/v1/applications", headers=api_keys.headers("applicant"))).json(),
        "registrations": (await client.get("/v1/registrations", headers=op)).json(),
        "review queue": (await client.get("/v1/review-queue", headers=op)).json(),
        "documents": (await client.get(f"/v1/applications/{app_id}/documents", headers=op)).json(),
        "number (staff)": (await client.get(f"/v1/numbers/{body['requested_number']}", headers=op)).json(),
        "api keys": (await client.get("/v1/api-keys", headers=api_keys.headers("admin"))).json(),
        "events": [e["data"] for e in await read_stream(client, api_keys, after=first - 1, limit=2)],
    }
    found = {name: timestamps(answer) for name, answer in answers.items()}
    wrong = [
        (name, path, text)
        for name, items in found.items()
        for path, text in items
        if not UTC_Z.fullmatch(text)
    ]
    assert wrong == []
    # The walk saw what it is about: every answer carries timestamps, and the
    # activation time sent with +08:00 comes back in UTC.
    assert all(found.values()), {name for name, items in found.items() if not items}
    expected = activation.replace(microsecond=0).astimezone(UTC).isoformat().replace("+00:00", "Z")
    assert answers["get (applicant)"]["activation_at"] == expected
    assert answers["decision"]["change_request"]["resubmit_by"].endswith("Z")
    assert answers["number (staff)"]["hold_expires_at"].endswith("Z")


async def test_the_timestamp_form_is_documented(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/v1/openapi.json")).json()
    assert "UTC with a `Z` suffix" in spec["info"]["description"]
    registration = spec["components"]["schemas"]["Registration"]["properties"]
    assert registration["created_at"] == {"type": "string", "format": "date-time", "title": "Created At"}

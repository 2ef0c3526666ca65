"""Dashboards: listing with filters and keyset pagination, counts, the review
queue, and the live event stream."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from domain.lifecycle import lifecycle_of
from domain.timeline import Stage, Status
from tests.api.fixtures import Keys

BASE = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


async def add_registrations(
    pool: asyncpg.Pool,
    organisation: str,
    count: int,
    *,
    start: datetime = BASE,
    step: timedelta = timedelta(seconds=1),
    **columns: Any,
) -> list[str]:
    """Read-model rows, as the workflow's activities write them."""
    ids = []
    async with pool.acquire() as conn:
        for i in range(count):
            reg_id = f"app_{uuid.uuid4().hex[:26]}"
            values = {
                "carrier_code": "china_unicom",
                "stage": "audit",
                "status": "in_review",
                "waiting_for": "operator_decision",
                "overdue": False,
                **columns,
            }
            await conn.execute(
                """INSERT INTO registration (id, workflow_id, organisation_id, carrier_code, company_name,
                       credit_code, stage, status, waiting_for, overdue, created_at, updated_at, lifecycle)
                   VALUES ($1, $2, $3, $4, 'Co', '91440300MA5F1B2C3F', $5, $6, $7, $8, $9, $9, $10)""",
                reg_id,
                f"registration-{reg_id}",
                organisation,
                values["carrier_code"],
                values["stage"],
                values["status"],
                values["waiting_for"],
                values["overdue"],
                start + i * step,
                lifecycle_of(Stage(values["stage"]), Status(values["status"])).value,
            )
            ids.append(reg_id)
    return ids


def org() -> str:
    return f"org_dash_{uuid.uuid4().hex[:10]}"


async def page_all(
    client: httpx.AsyncClient, keys: Keys, params: dict[str, Any], between_pages: Any = None
) -> list[str]:
    seen: list[str] = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = await client.get("/v1/registrations", params=query, headers=keys.headers("viewer"))
        assert response.status_code == 200, response.text
        page = response.json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return seen
        if between_pages is not None:
            await between_pages()


@pytest.mark.parametrize("order", ["desc", "asc"])
async def test_pagination_is_stable_while_rows_arrive(
    client: httpx.AsyncClient, pool: asyncpg.Pool, api_keys: Keys, order: str
) -> None:
    organisation = org()
    original = await add_registrations(pool, organisation, 25)
    arrived: list[str] = []
    clock = [BASE + timedelta(hours=1)]

    async def new_rows() -> None:
        # Newer rows, and one with the same timestamp as an existing row (ties
        # are broken by id, so it cannot be counted twice or pushed out).
        arrived.extend(await add_registrations(pool, organisation, 2, start=clock[0]))
        arrived.extend(await add_registrations(pool, organisation, 1, start=BASE + timedelta(seconds=12)))
        clock[0] += timedelta(minutes=1)

    seen = await page_all(
        client, api_keys, {"organisation_id": organisation, "limit": 7, "order": order}, new_rows
    )
    assert len(seen) == len(set(seen)), "a row was returned twice"
    assert set(original) <= set(seen), "an existing row was skipped"
    assert set(seen) <= set(original) | set(arrived)
    expected = original if order == "asc" else list(reversed(original))
    assert [s for s in seen if s in set(original)] == expected


async def test_filters(client: httpx.AsyncClient, pool: asyncpg.Pool, api_keys: Keys) -> None:
    organisation = org()
    audit = await add_registrations(pool, organisation, 3)
    overdue = await add_registrations(pool, organisation, 2, start=BASE + timedelta(days=1), overdue=True)
    telecom = await add_registrations(
        pool,
        organisation,
        2,
        start=BASE + timedelta(days=2),
        carrier_code="china_telecom",
        stage="allocate",
        status="awaiting_prepayment",
        waiting_for="prepayment",
    )

    async def ids(**params: Any) -> set[str]:
        return set(await page_all(client, api_keys, {"organisation_id": organisation, **params}))

    assert await ids() == set(audit + overdue + telecom)
    assert await ids(stage="allocate") == set(telecom)
    assert await ids(status="in_review") == set(audit + overdue)
    assert await ids(carrier="china_telecom") == set(telecom)
    assert await ids(overdue="true") == set(overdue)
    assert await ids(overdue="false") == set(audit + telecom)
    day2 = (BASE + timedelta(days=1)).isoformat()
    assert await ids(created_from=day2) == set(overdue + telecom)
    assert await ids(created_to=day2) == set(audit)

    bad = await client.get(
        "/v1/registrations",
        params={"stage": "limbo", "created_from": "yesterday", "limit": 0},
        headers=api_keys.headers("viewer"),
    )
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json()["errors"]} == {"stage", "created_from", "limit"}
    naive = await client.get(
        "/v1/registrations",
        params={"created_from": "2026-01-01T00:00:00"},
        headers=api_keys.headers("viewer"),
    )
    assert naive.status_code == 422
    assert naive.json()["errors"][0]["code"] == "timezone_required"

    stats = (
        await client.get(
            "/v1/registrations/stats",
            params={"organisation_id": organisation},
            headers=api_keys.headers("viewer"),
        )
    ).json()
    assert stats["total"] == 7
    assert stats["overdue"] == 2
    assert stats["by_stage"] == {"audit": 5, "allocate": 2}
    assert stats["by_carrier"] == {"china_unicom": 5, "china_telecom": 2}
    assert {(r["stage"], r["carrier"], r["total"], r["overdue"]) for r in stats["by_stage_and_carrier"]} == {
        ("audit", "china_unicom", 5, 2),
        ("allocate", "china_telecom", 2, 0),
    }


async def test_review_queue_is_overdue_first_then_oldest(
    client: httpx.AsyncClient, pool: asyncpg.Pool, api_keys: Keys
) -> None:
    organisation = org()
    fresh = await add_registrations(pool, organisation, 3, start=BASE + timedelta(days=3))
    late = await add_registrations(pool, organisation, 2, start=BASE + timedelta(days=5), overdue=True)
    old = await add_registrations(pool, organisation, 1, start=BASE)
    await add_registrations(
        pool, organisation, 2, stage="allocate", status="awaiting_prepayment", waiting_for="prepayment"
    )
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"organisation_id": organisation, "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (
            await client.get("/v1/review-queue", params=params, headers=api_keys.headers("operator"))
        ).json()
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == late + old + fresh


# --------------------------------------------------------------------------
# Server-Sent Events
# --------------------------------------------------------------------------


def parse_sse(text: str) -> list[dict[str, Any]]:
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.split("\n"):
            if not line or line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            fields[name] = value[1:] if value.startswith(" ") else value
        if "data" in fields:
            events.append(
                {"id": int(fields["id"]), "event": fields["event"], "data": json.loads(fields["data"])}
            )
    return events


async def append_events(
    conn: asyncpg.Connection, stream: str, types: list[str], first_version: int = 1
) -> list[int]:
    positions = []
    for offset, event_type in enumerate(types):
        positions.append(
            await conn.fetchval(
                """INSERT INTO domain_event (stream_id, version, event_id, event_type, actor, actor_role,
                       correlation_id, occurred_at, payload)
                   VALUES ($1, $2, $3, $4, 'system', 'system', 'test', now(), $5) RETURNING position""",
                stream,
                first_version + offset,
                uuid.uuid4(),
                event_type,
                {"n": offset},
            )
        )
    return positions


async def last_position(pool: asyncpg.Pool) -> int:
    async with pool.acquire() as conn:
        return int(await conn.fetchval("SELECT coalesce(max(position), 0) FROM domain_event"))


async def read_stream(client: httpx.AsyncClient, keys: Keys, **params: Any) -> list[dict[str, Any]]:
    headers = keys.headers("viewer", **params.pop("headers", {}))
    response = await client.get("/v1/events", params=params, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    return parse_sse(response.text)


async def test_stream_replays_in_order_and_resumes_from_last_event_id(
    client: httpx.AsyncClient, pool: asyncpg.Pool, api_keys: Keys
) -> None:
    start = await last_position(pool)
    stream = f"sse-{uuid.uuid4()}"
    async with pool.acquire() as conn:
        positions = await append_events(
            conn, stream, ["ApplicationSubmitted", "ReviewOverdue", "ApplicationApproved"]
        )
    events = await read_stream(client, api_keys, after=start, limit=3)
    assert [e["id"] for e in events] == positions
    assert [e["event"] for e in events] == ["ApplicationSubmitted", "ReviewOverdue", "ApplicationApproved"]
    assert events[0]["data"]["application_id"] == stream
    assert events[0]["data"]["position"] == positions[0]

    resumed = await read_stream(client, api_keys, limit=2, headers={"Last-Event-ID": str(positions[0])})
    assert [e["id"] for e in resumed] == positions[1:]
    only = await read_stream(client, api_keys, after=start, limit=1, types="ApplicationApproved")
    assert [e["id"] for e in only] == positions[2:]

    bad = await client.get("/v1/events", headers=api_keys.headers("viewer", **{"Last-Event-ID": "abc"}))
    assert bad.status_code == 422


async def test_stream_delivers_live_events(
    client: httpx.AsyncClient, pool: asyncpg.Pool, api_keys: Keys
) -> None:
    start = await last_position(pool)
    reader = asyncio.create_task(read_stream(client, api_keys, after=start, limit=1))
    await asyncio.sleep(0.3)
    assert not reader.done()
    async with pool.acquire() as conn:
        (position,) = await append_events(conn, f"sse-{uuid.uuid4()}", ["ApplicationWithdrawn"])
    events = await asyncio.wait_for(reader, 10)
    assert [e["id"] for e in events] == [position]


async def test_stream_waits_for_a_slower_transaction_instead_of_skipping_it(
    client: httpx.AsyncClient, pool: asyncpg.Pool, api_keys: Keys
) -> None:
    start = await last_position(pool)
    async with pool.acquire() as slow, pool.acquire() as fast:
        tx = slow.transaction()
        await tx.start()
        (first,) = await append_events(slow, f"sse-{uuid.uuid4()}", ["ApplicationSubmitted"])
        (second,) = await append_events(fast, f"sse-{uuid.uuid4()}", ["ApplicationSubmitted"])
        assert second > first
        reader = asyncio.create_task(read_stream(client, api_keys, after=start, limit=2))
        await asyncio.sleep(0.2)  # shorter than the test app's 0.5 s gap wait
        await tx.commit()
    events = await asyncio.wait_for(reader, 10)
    assert [e["id"] for e in events] == [first, second]


async def test_stream_moves_past_a_rolled_back_position(
    client: httpx.AsyncClient, pool: asyncpg.Pool, api_keys: Keys
) -> None:
    start = await last_position(pool)
    async with pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        await append_events(conn, f"sse-{uuid.uuid4()}", ["ApplicationSubmitted"])
        await tx.rollback()
        (kept,) = await append_events(conn, f"sse-{uuid.uuid4()}", ["ApplicationSubmitted"])
    events = await asyncio.wait_for(read_stream(client, api_keys, after=start, limit=1), 10)
    assert [e["id"] for e in events] == [kept]

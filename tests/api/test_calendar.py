"""/v1/calendar through the real stack: a year's schedule shown and loaded,
every bad date a 422 naming it, concurrent loads of one year, the missing year
in the status, /readyz and /metrics, and provisional deadlines on the
application, the dashboard list and the timeline."""

from __future__ import annotations

import asyncio
import json
import random
from datetime import date, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from activities.repositories import calendar as repo
from tests.api.fixtures import Keys, application_body, submit
from tests.calendar_support import china_today, without_official_year

# Never loaded by any test: what a year without a schedule looks like.
UNLOADED = 2199


async def fresh_year(pool: asyncpg.Pool) -> int:
    """A year no test has loaded (schemathesis and the matrix load 2099)."""
    async with pool.acquire() as conn:
        taken = set(await repo.official_years(conn))
    return random.choice([y for y in range(2100, UNLOADED) if y not in taken])


def first_weekend_day_after(day: date) -> date:
    while day.weekday() < 5:
        day += timedelta(days=1)
    return day


def schedule(year: int, *, spring: tuple[int, int] = (2, 10), **overrides: Any) -> dict[str, Any]:
    """New Year's Day 01-01..01-03 and a week of Spring Festival, with a make-up weekend day."""
    start = date(year, *spring)
    return {
        "year": year,
        "source": f"tests: sample {year}",
        "holidays": [
            {"name": "元旦", "start": f"{year}-01-01", "end": f"{year}-01-03"},
            {"name": "春节", "start": start.isoformat(), "end": (start + timedelta(days=6)).isoformat()},
        ],
        "makeup_days": [{"date": first_weekend_day_after(date(year, 1, 10)).isoformat(), "name": "春节"}],
    } | overrides


async def put(
    client: httpx.AsyncClient,
    keys: Keys,
    year: int,
    body: Any,
    *,
    yaml: bool = False,
    if_match: str | None = None,
) -> httpx.Response:
    content = body if isinstance(body, str) else json.dumps(body)
    headers = {"Content-Type": "application/yaml" if yaml else "application/json"}
    if if_match is not None:
        headers["If-Match"] = if_match
    return await client.put(f"/v1/calendar/{year}", content=content, headers=keys.headers("admin", **headers))


async def test_a_year_is_shown_as_the_notice_lists_it(client: httpx.AsyncClient, api_keys: Keys) -> None:
    shown = await client.get("/v1/calendar/2026", headers=api_keys.headers("applicant"))
    assert shown.status_code == 200, shown.text
    body = shown.json()
    assert (body["year"], body["official"]) == (2026, True)
    assert {"name": "春节", "start": "2026-02-15", "end": "2026-02-23"} in body["holidays"]
    assert {"date": "2026-02-14", "name": "春节"} in body["makeup_days"]
    assert shown.headers["etag"] == f'"{body["version"]}"'
    unknown = (await client.get(f"/v1/calendar/{UNLOADED}", headers=api_keys.headers("viewer"))).json()
    assert (unknown["official"], unknown["version"], unknown["holidays"]) == (False, None, [])


async def test_a_load_answers_with_what_it_changed(
    client: httpx.AsyncClient, api_keys: Keys, pool: asyncpg.Pool
) -> None:
    year = await fresh_year(pool)
    as_yaml = (
        f"year: {year}\nsource: tests\nholidays:\n"
        f"  - {{name: 元旦, start: {year}-01-01, end: {year}-01-03}}\nmakeup_days: []\n"
    )
    first = await put(client, api_keys, year, as_yaml, yaml=True)
    assert first.status_code == 200, first.text
    loaded = first.json()
    assert loaded["previous_version"] is None
    assert [c["date"] for c in loaded["added"]] == [f"{year}-01-0{d}" for d in (1, 2, 3)]
    assert loaded["added"][0]["after"] == {"date": f"{year}-01-01", "kind": "holiday", "name": "元旦"}
    assert (loaded["removed"], loaded["changed"], loaded["deadlines_to_recompute"]) == ([], [], 0)
    assert loaded["recompute"]["started"] is True
    assert first.headers["etag"] == f'"{loaded["version"]}"'

    body = schedule(year)
    body["holidays"][0]["end"] = f"{year}-01-02"
    again = await put(client, api_keys, year, body, if_match=f'"{loaded["version"]}"')
    assert again.status_code == 200, again.text
    changed = again.json()
    assert changed["previous_version"] == loaded["version"] and changed["version"] > loaded["version"]
    assert [c["date"] for c in changed["removed"]] == [f"{year}-01-03"]
    assert len(changed["added"]) == 8  # the week of Spring Festival and its make-up day
    shown = (await client.get(f"/v1/calendar/{year}", headers=api_keys.headers("admin"))).json()
    assert (shown["official"], shown["version"], shown["source"]) == (
        True,
        changed["version"],
        f"tests: sample {year}",
    )
    assert shown["holidays"][0] == {"name": "元旦", "start": f"{year}-01-01", "end": f"{year}-01-02"}

    async def finished() -> dict[str, Any] | None:
        response = await client.get(f"/v1/calendar/{year}/recompute", headers=api_keys.headers("operator"))
        assert response.status_code == 200, response.text
        progress: dict[str, Any] = response.json()
        return progress if progress["finished"] else None

    progress = await _until(finished)
    assert (progress["calendar_version"], progress["found"], progress["failed"]) == (changed["version"], 0, 0)


async def _until(check: Any, timeout: float = 20.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while not (value := await check()):
        assert asyncio.get_running_loop().time() < deadline, "not in time"
        await asyncio.sleep(0.1)
    return value


def _bad(year: int, path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    body = schedule(year)
    node: Any = body
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return body


@pytest.mark.parametrize(
    ("path", "value", "field", "code", "named"),
    [
        (("holidays", 0, "start"), "{prev}-12-31", "holidays[0].start", "outside_year", "{prev}-12-31"),
        (("holidays", 1, "end"), "{next}-01-02", "holidays[1].end", "outside_year", "{next}-01-02"),
        (("holidays", 1, "end"), "{year}-02-01", "holidays[1].end", "range_reversed", "{year}-02-01"),
        (("makeup_days", 0, "date"), "{off}", "makeup_days[0].date", "holiday_and_makeup_day", "{off}"),
        (
            ("makeup_days", 0, "date"),
            "{weekday}",
            "makeup_days[0].date",
            "makeup_day_not_on_weekend",
            "{weekday}",
        ),
        (("makeup_days", 0, "date"), "{later}", "makeup_days[0].date", "outside_year", "{later}"),
        (("year",), "{prev}", "year", "year_mismatch", "{prev}"),
        # Not a date at all: the field says where (pydantic's message cannot quote it).
        (("holidays", 0, "start"), "{year}-02-30", "holidays[0].start", "date_from_datetime_parsing", None),
    ],
)
async def test_each_bad_date_is_a_422_naming_it(
    client: httpx.AsyncClient,
    api_keys: Keys,
    pool: asyncpg.Pool,
    path: tuple[Any, ...],
    value: str,
    field: str,
    code: str,
    named: str | None,
) -> None:
    year = await fresh_year(pool)
    weekday = date(year, 1, 12)
    while weekday.weekday() >= 5:
        weekday += timedelta(days=1)
    values = {
        "year": year,
        "prev": year - 1,
        "next": year + 1,
        "weekday": weekday.isoformat(),
        "off": first_weekend_day_after(date(year, 2, 10)).isoformat(),  # inside Spring Festival
        "later": first_weekend_day_after(date(year + 1, 1, 5)).isoformat(),
    }
    bad = _bad(year, path, int(value.format(**values)) if path == ("year",) else value.format(**values))
    response = await put(client, api_keys, year, bad)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    errors = response.json()["errors"]
    assert [(e["field"], e["code"]) for e in errors] == [(field, code)], errors
    if named is not None:
        assert named.format(**values) in errors[0]["message"]
    # Nothing was stored.
    shown = (await client.get(f"/v1/calendar/{year}", headers=api_keys.headers("admin"))).json()
    assert shown["official"] is False


@pytest.mark.parametrize(
    ("content", "media", "status", "field"),
    [
        ("holidays: &a [*a]", "application/yaml", 422, "body"),  # aliases are refused
        ("year: [unclosed", "text/yaml", 422, "body"),
        ("holidays: [{name: x, start: 2150-02-30}]", "application/yaml", 422, "body"),  # not a date
        ("{not json", "application/json", 422, "body"),
        ("[]", "application/json", 422, "body"),
        (
            '{"holidays": [{"name": "元旦", "start": "2150-01-01"}], "extra": 1}',
            "application/json",
            422,
            "extra",
        ),
        ("year: 2150", "text/plain", 415, "Content-Type"),
    ],
)
async def test_unreadable_schedules(
    client: httpx.AsyncClient, api_keys: Keys, content: str, media: str, status: int, field: str
) -> None:
    response = await client.put(
        f"/v1/calendar/{UNLOADED}",
        content=content,
        headers=api_keys.headers("admin", **{"Content-Type": media}),
    )
    assert response.status_code == status, response.text
    assert response.json()["errors"][0]["field"] == field


async def test_concurrent_loads_of_one_year(
    client: httpx.AsyncClient, api_keys: Keys, pool: asyncpg.Pool
) -> None:
    """Loads of one year are applied one at a time. With If-Match (the version
    read) one wins and the other is 409 naming the winner's version; without it
    the second is applied after the first and names it as its previous version."""
    year = await fresh_year(pool)
    a, b = schedule(year), schedule(year, spring=(2, 17))
    answers = await asyncio.gather(
        put(client, api_keys, year, a, if_match="0"),
        put(client, api_keys, year, b, if_match="0"),
    )
    assert sorted(r.status_code for r in answers) == [200, 409], [r.text for r in answers]
    won = next(r for r in answers if r.status_code == 200).json()
    lost = next(r for r in answers if r.status_code == 409).json()
    assert (lost["code"], lost["current_version"]) == ("version_conflict", won["version"])
    assert str(won["version"]) in lost["detail"]

    first, second = await asyncio.gather(put(client, api_keys, year, b), put(client, api_keys, year, a))
    assert (first.status_code, second.status_code) == (200, 200), (first.text, second.text)
    earlier, later = sorted((first.json(), second.json()), key=lambda x: x["version"])
    assert earlier["previous_version"] == won["version"]
    assert later["previous_version"] == earlier["version"]
    shown = (await client.get(f"/v1/calendar/{year}", headers=api_keys.headers("admin"))).json()
    assert shown["version"] == later["version"]


async def test_only_an_admin_loads_a_year(
    client: httpx.AsyncClient, api_keys: Keys, pool: asyncpg.Pool
) -> None:
    year = await fresh_year(pool)
    for role in ("operator", "viewer", "applicant"):
        response = await client.put(
            f"/v1/calendar/{year}", json=schedule(year), headers=api_keys.headers(role)
        )
        assert response.status_code == 403, (role, response.text)


async def test_a_missing_year_is_reported_and_readiness_stays_green(
    client: httpx.AsyncClient, api_keys: Keys, pool: asyncpg.Pool
) -> None:
    year = china_today().year
    async with without_official_year(pool, year):
        status = (await client.get("/v1/calendar/status", headers=api_keys.headers("viewer"))).json()
        assert year in [m["year"] for m in status["missing"]]
        assert str(year) in status["detail"]
        ready = await client.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["calendar"]["status"] == "year missing"
        assert year in ready.json()["calendar"]["missing_years"]
        metrics = (await client.get("/metrics")).text
        assert f'hotline400_calendar_year_missing{{year="{year}"}} 1.0' in metrics
    status = (await client.get("/v1/calendar/status", headers=api_keys.headers("viewer"))).json()
    assert status["missing"] == [] and status["detail"] is None
    assert (await client.get("/readyz")).json()["calendar"]["status"] == "ok"
    metrics = (await client.get("/metrics")).text
    assert f'hotline400_calendar_year_missing{{year="{year}"}} 0.0' in metrics


async def test_a_provisional_deadline_shows_everywhere(
    client: httpx.AsyncClient, api_keys: Keys, pool: asyncpg.Pool
) -> None:
    """Submitted while this year has no official schedule: the review target is
    provisional on the application, the dashboard list and the timeline."""
    async with without_official_year(pool, china_today().year):
        created = await submit(client, api_keys, await application_body(client, pool, api_keys["applicant"]))
        assert created.status_code == 201, created.text
        app_id = created.json()["id"]
        assert created.json()["deadline_provisional"] is True
    shown = (await client.get(f"/v1/applications/{app_id}", headers=api_keys.headers("applicant"))).json()
    assert shown["deadline_provisional"] is True and shown["next_deadline"]
    listed = (
        await client.get(
            "/v1/registrations",
            params={"organisation_id": api_keys.organisation, "limit": 50},
            headers=api_keys.headers("viewer"),
        )
    ).json()["items"]
    assert next(r for r in listed if r["id"] == app_id)["deadline_provisional"] is True
    entries = (
        await client.get(f"/v1/applications/{app_id}/timeline", headers=api_keys.headers("operator"))
    ).json()
    submitted = next(e for e in entries["entries"] if e["event_type"] == "ApplicationSubmitted")
    assert submitted["deadline_provisional"] is True
    # The year back: a new application's deadline is official.
    again = await submit(client, api_keys, await application_body(client, pool, api_keys["applicant"]))
    assert again.json()["deadline_provisional"] is False

"""The console keeps the API's contracts under load and faults: sign-ins never
stall the process, unavailability is 503 with Retry-After, a 429 says when to
come back, the live stream takes only what the API takes, names hide nothing,
audit streams take concurrent events."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from asyncpg.transaction import Transaction

from activities.repositories.service import append_event
from api.auth import Principal
from api.config import ApiSettings
from api.errors import TooManyRequests
from api.permissions import Role
from api.schemas.common import encode_cursor
from api.services import personal_data
from app.embedded import free_port
from app.settings import Settings
from tests.api.test_errors import _wait_checked
from tests.api.test_hostile_input import HealthProbe
from tests.web.console_http import (
    PASSWORD,
    Account,
    console_app,
    new_account,
    post_login,
    quiet_console,
    signed_in,
)
from web.services import staff as staff_service
from web.services.hashing import PasswordHashing


@pytest.fixture(scope="module")
async def console(stack_settings: Settings, api_settings: ApiSettings) -> AsyncIterator[httpx.AsyncClient]:
    """The application with short live streams, two per session."""
    short = api_settings.model_copy(update={"sse_max_stream_seconds": 1.5})
    async with console_app(stack_settings, short, quiet_console(live_streams_per_session=2)) as (_, client):
        yield client


@pytest.fixture(scope="module")
async def accounts(pool: asyncpg.Pool) -> dict[str, Account]:
    return {role: await new_account(pool, role) for role in ("operator", "admin", "viewer")}


def assert_retry_after(response: httpx.Response) -> int:
    seconds = int(response.headers["retry-after"])
    assert seconds >= 1, response.headers
    return seconds


# ---------------------------------------------------------------------------
# Sign-in: password hashing off the event loop, bounded
# ---------------------------------------------------------------------------


async def test_many_sign_ins_at_once_do_not_stall_the_service(
    stack_settings: Settings, api_settings: ApiSettings, accounts: dict[str, Account]
) -> None:
    """Ten sign-ins at once held the event loop (argon2 on it) for 4.5 s: every
    other request of the process, /healthz included, waited as long."""
    patient = quiet_console(password_hashing_wait_seconds=60)  # here every sign-in waits its turn
    async with (
        console_app(stack_settings, api_settings, patient) as (_, console),
        HealthProbe(console).running() as probe,
    ):
        answers = await asyncio.gather(
            *(post_login(console, accounts["operator"].username, PASSWORD) for _ in range(6)),
            *(post_login(console, f"nobody-{i}", PASSWORD) for i in range(6)),
        )
        await asyncio.sleep(0.05)
    assert probe.answers > 1
    assert sorted(r.status_code for r in answers) == [303] * 6 + [401] * 6, [r.text for r in answers]
    assert probe.slowest < 0.5, f"/healthz waited {probe.slowest:.2f} s"


async def test_password_hashing_runs_a_few_at_a_time_and_refuses_beyond(
    stack_settings: Settings, api_settings: ApiSettings, accounts: dict[str, Account]
) -> None:
    hashing = PasswordHashing(slots=1, wait_seconds=0.05)
    first = asyncio.create_task(hashing.hash(PASSWORD))
    await asyncio.sleep(0)  # the first holds the only slot
    with pytest.raises(TooManyRequests) as refused:
        await hashing.hash("another password")
    assert refused.value.headers == {"Retry-After": "1"}
    assert await hashing.verify(await first, PASSWORD)  # a slot again once the first is done

    # Through the sign-in page: 429 with Retry-After, the form shown again.
    busy = quiet_console(password_hashing_slots=1, password_hashing_wait_seconds=0.05)
    async with console_app(stack_settings, api_settings, busy) as (_, client):
        answers = await asyncio.gather(
            *(post_login(client, accounts["viewer"].username, PASSWORD) for _ in range(6))
        )
    statuses = sorted(r.status_code for r in answers)
    assert 303 in statuses and 429 in statuses, statuses
    for response in answers:
        if response.status_code == 429:
            assert_retry_after(response)
            assert 'name="password"' in response.text


# ---------------------------------------------------------------------------
# Errors keep the readiness contract: 503 and 429 say when to retry
# ---------------------------------------------------------------------------


async def test_the_sign_in_limit_is_429_with_retry_after(
    stack_settings: Settings, api_settings: ApiSettings
) -> None:
    async with console_app(stack_settings, api_settings, quiet_console(sign_ins_per_minute=2)) as (_, client):
        answers = [await post_login(client, "nobody-at-all", "wrong password") for _ in range(3)]
    assert [r.status_code for r in answers] == [401, 401, 429]
    assert 1 <= assert_retry_after(answers[2]) <= 60
    assert 'name="password"' in answers[2].text  # the sign-in page, saying to wait


async def test_the_database_down_is_503_with_retry_after_on_every_page(
    stack_settings: Settings, api_settings: ApiSettings
) -> None:
    dead = stack_settings.model_copy(update={"database_url": f"postgres://x@127.0.0.1:{free_port()}/none"})
    impatient = api_settings.model_copy(update={"pool_acquire_timeout": 1.0})
    async with console_app(dead, impatient) as (_, client):
        for headers in ({}, {"HX-Request": "true"}):
            response = await client.get(
                "/console/queue", headers={"Cookie": "h400_console=some-session", **headers}
            )
            assert response.status_code == 503, response.text
            assert response.headers["content-type"].startswith("text/html")
            assert_retry_after(response)


async def test_actions_fail_fast_with_503_and_retry_after_when_no_worker_polls(
    stack_settings: Settings,
    api_settings: ApiSettings,
    pool: asyncpg.Pool,
    accounts: dict[str, Account],
    submitted: dict[str, Any],
) -> None:
    """The console's actions turned "no worker" into 422 or 409 (numbers) or
    waited for the Update timeout; the API answers 503 at once."""
    orphan = stack_settings.model_copy(update={"temporal_task_queue": f"nobody-{uuid.uuid4()}"})
    quick = api_settings.model_copy(update={"poller_grace_seconds": 0.5, "health_interval_seconds": 0.2})
    async with console_app(orphan, quick) as (_, client):
        await _wait_checked(client, "workers")
        session = await signed_in(pool, accounts["operator"])
        app_id = submitted["id"]
        started = time.perf_counter()
        for path, form in (
            (f"/console/numbers/{app_id}/suspension", {"reason": "complaints"}),
            (f"/console/applications/{app_id}/verification", {"outcome": "pass", "reason": "checked"}),
            (f"/console/applications/{app_id}/decision", {"decision": "approve"}),
        ):
            for htmx in (True, False):
                response = await client.post(path, data=form, headers=session.headers(htmx=htmx))
                assert response.status_code == 503, (path, htmx, response.status_code, response.text)
                assert_retry_after(response)
                assert "稍后重试" in response.text  # retry in a moment, in the console's Chinese
        assert time.perf_counter() - started < 2.0  # at once, not after an Update timeout each
    state = await pool.fetchrow("SELECT stage, status FROM registration WHERE id = $1", app_id)
    assert (state["stage"], state["status"]) == ("audit", "in_review")  # nothing was decided


# ---------------------------------------------------------------------------
# The live stream: Last-Event-ID as the API takes it, streams per session capped
# ---------------------------------------------------------------------------


async def test_a_last_event_id_the_api_refuses_is_refused_before_the_stream(
    console: httpx.AsyncClient, pool: asyncpg.Pool, accounts: dict[str, Account]
) -> None:
    session = await signed_in(pool, accounts["viewer"])
    # "²" passed isdigit() (and int() then failed); "١٢٣" too, sent as UTF-8.
    refused = (b"99999999999999999999", str(2**63).encode(), "1²".encode("latin-1"), "١٢٣".encode(), b"-1")
    for value in refused:
        raw = [(k.encode(), v.encode()) for k, v in session.headers().items()] + [(b"Last-Event-ID", value)]
        response = await console.get("/console/live", headers=raw)
        assert response.status_code == 422, (value, response.status_code, response.text[:200])
        assert response.headers["content-type"].startswith("text/html")
        assert "<code>Last-Event-ID</code>" in response.text, response.text  # says which header
    too_long = await console.get("/console/live", headers={**session.headers(), "Last-Event-ID": "1" * 65})
    assert too_long.status_code == 422 and "<code>Last-Event-ID</code>" in too_long.text
    fine = await console.get("/console/live", headers={**session.headers(), "Last-Event-ID": str(2**63 - 1)})
    assert fine.status_code == 200 and fine.headers["content-type"].startswith("text/event-stream")


async def test_live_streams_are_capped_per_session(
    console: httpx.AsyncClient, pool: asyncpg.Pool, accounts: dict[str, Account]
) -> None:
    first, second = await signed_in(pool, accounts["operator"]), await signed_in(pool, accounts["operator"])

    async def stream(session: Any) -> httpx.Response:
        return await console.get("/console/live", headers=session.headers())

    open_ = [asyncio.create_task(stream(first)) for _ in range(2)]
    await asyncio.sleep(0.5)
    refused = await stream(first)
    assert refused.status_code == 429, refused.text[:200]
    assert_retry_after(refused)
    other = asyncio.create_task(stream(second))  # per session, not per account
    assert [r.status_code for r in await asyncio.gather(*open_, other)] == [200, 200, 200]
    again = await asyncio.gather(stream(first), stream(first))  # ended streams gave their slots back
    assert [r.status_code for r in again] == [200, 200]


# ---------------------------------------------------------------------------
# Names: nothing hidden, nothing PostgreSQL cannot store
# ---------------------------------------------------------------------------


async def test_a_staff_name_that_hides_its_meaning_or_cannot_be_stored_is_refused(
    console: httpx.AsyncClient, pool: asyncpg.Pool, accounts: dict[str, Account]
) -> None:
    session = await signed_in(pool, accounts["admin"])
    for name, why in (
        ("Wang\u202eil", "不可见的格式字符"),  # invisible formatting characters
        ("\u200bWang Li", "不可见的格式字符"),
        ("Wang\u2066Li", "不可见的格式字符"),
        ("Wang\x00Li", "无法保存的字符（如 NUL）"),  # a character that cannot be stored
    ):
        username = f"hidden-{uuid.uuid4().hex[:8]}"
        response = await console.post(
            "/console/staff",
            data={"username": username, "display_name": name, "role": "viewer", "password": PASSWORD},
            headers=session.headers(),
        )
        assert response.status_code == 422, (name, response.status_code)
        assert why in response.text, name
        assert await pool.fetchval("SELECT count(*) FROM staff_account WHERE username = $1", username) == 0
    too_long = await console.post(
        "/console/staff",
        data={
            "username": f"long-{uuid.uuid4().hex[:8]}",
            "display_name": "王" * 101,
            "role": "viewer",
            "password": PASSWORD,
        },
        headers=session.headers(),
    )
    assert too_long.status_code == 422 and "姓名：长度不正确。" in too_long.text  # name: wrong length
    errors = staff_service.check_new_account("wang.li", "Wang\u202eLi", "viewer", PASSWORD)
    assert [(e["field"], e["code"]) for e in errors] == [("display_name", "hidden_characters")]

    # A username no account can have is a wrong sign-in, not a crash.
    refused = await post_login(console, "wang\x00li", PASSWORD)
    assert refused.status_code == 401


# ---------------------------------------------------------------------------
# Audit streams: concurrent events each take a version
# ---------------------------------------------------------------------------


async def _held_open(conn: asyncpg.Connection, stream_id: str) -> Transaction:
    """A transaction that has appended to ``stream_id`` and not committed yet."""
    transaction = conn.transaction()
    await transaction.start()
    await append_event(
        conn,
        stream_id=stream_id,
        event_id=str(uuid.uuid4()),
        event_type="TestEvent",
        actor="tests",
        actor_role="system",
        reason=None,
        correlation_id="tests",
        payload={},
        occurred_at=datetime.now(UTC),
    )
    return transaction


async def test_audit_events_appended_at_once_to_one_stream_all_land(
    pool: asyncpg.Pool, settings: Settings, accounts: dict[str, Account], submitted: dict[str, Any]
) -> None:
    """Both took max(version) + 1: the second waited for the first, then failed on
    the stream's primary key (a 500 for a reveal or a sign-in)."""
    app_id = submitted["id"]
    operator = Principal(accounts["operator"].id, Role.OPERATOR, None, kind="staff")
    account = await new_account(pool, "viewer")
    cases: list[tuple[str, Any]] = [
        (
            personal_data.access_stream(app_id),
            lambda conn: personal_data.reveal(
                conn,
                personal_data.form_cipher(settings),
                operator,
                app_id,
                "legal_representative.phone",
                "checking the phone against the form",
            ),
        ),
        (
            staff_service.stream_of(account.id),
            lambda conn: staff_service.sign_in(
                pool.acquire, account.username, "wrong", max_failures=5, lockout=timedelta(minutes=1)
            ),
        ),
    ]
    for stream_id, act in cases:
        async with pool.acquire() as first, pool.acquire() as second:
            held = await _held_open(first, stream_id)
            acting = asyncio.create_task(act(second))
            await asyncio.sleep(0.5)  # its insert now waits for the held one
            await held.commit()
            with contextlib.suppress(staff_service.SignInRefused):  # the wrong password: recorded
                await acting
        versions = [
            r["version"]
            for r in await pool.fetch(
                "SELECT version FROM domain_event WHERE stream_id = $1 ORDER BY version", stream_id
            )
        ]
        assert versions == list(range(1, len(versions) + 1)) and len(versions) >= 2, (stream_id, versions)

    # And many at once, as a busy desk would.
    shown = await asyncio.gather(*(_reveal(pool, settings, operator, app_id) for _ in range(8)))
    assert len(set(shown)) == 1
    count = await pool.fetchval(
        "SELECT count(DISTINCT version) FROM domain_event WHERE stream_id = $1", cases[0][0]
    )
    assert count == 2 + 8


async def _reveal(pool: asyncpg.Pool, settings: Settings, principal: Principal, app_id: str) -> str:
    async with pool.acquire() as conn:
        return await personal_data.reveal(
            conn, personal_data.form_cipher(settings), principal, app_id, "legal_representative.phone", "many"
        )


# ---------------------------------------------------------------------------
# Inventory: a cursor for other filters is a message on the page
# ---------------------------------------------------------------------------


async def test_a_next_page_link_for_other_filters_is_a_message_in_the_inventory_page(
    console: httpx.AsyncClient, pool: asyncpg.Pool, accounts: dict[str, Account]
) -> None:
    session = await signed_in(pool, accounts["viewer"])
    made_elsewhere = encode_cursor("num", ["4000000000", None, False], {"starts_with": "4008"})
    response = await console.get(
        "/console/inventory", params={"cursor": made_elsewhere}, headers=session.headers()
    )
    assert response.status_code == 400
    assert 'action="/console/inventory"' in response.text  # the search form, to start again
    # "This next-page link was made for other filters: search again."
    assert '<p class="error" role="alert">此翻页链接对应的是其他筛选条件，请重新搜索。</p>' in response.text
    garbage = await console.get(
        "/console/inventory", params={"cursor": "not-a-cursor"}, headers=session.headers()
    )
    assert garbage.status_code == 422 and 'action="/console/inventory"' in garbage.text
    assert "翻页链接：翻页链接无效，请重新搜索。" in garbage.text  # page link: not valid, search again


async def test_a_mistyped_address_is_a_page_naming_the_field(
    console: httpx.AsyncClient, pool: asyncpg.Pool, accounts: dict[str, Account]
) -> None:
    session = await signed_in(pool, accounts["operator"])
    response = await console.get("/console/applications/not-an-id", headers=session.headers())
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("text/html")
    assert "<code>application_id</code>" in response.text

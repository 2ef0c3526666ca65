"""States that tell the truth, through the HTTP API and the real workflows:
one lifecycle per registration from application to release (filtered and
counted on), a service that has ended no longer reads as active anywhere,
the nearest deadline once active, and money paid before an activation that
never came is owed back."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from api.auth import Role
from api.config import ApiSettings
from api.main import create_app
from app.settings import Settings
from tests.api.fixtures import Keys, activate, application_body, make_key, submit
from workflows.contracts import registration_workflow_id
from workflows.search_attributes import LIFECYCLE, STAGE


@pytest.fixture
async def own_keys(pool: asyncpg.Pool, settings: Settings, api_keys: Keys) -> Keys:
    """The session's keys with an applicant of an organisation of its own, so
    that this test's counts are its registrations only."""
    organisation = f"org_lc_{uuid.uuid4().hex[:10]}"
    token = await make_key(pool, settings, Role.APPLICANT, organisation)
    return Keys(tokens={**api_keys.tokens, "applicant": token}, organisation=organisation)


async def _submitted(client: httpx.AsyncClient, pool: asyncpg.Pool, keys: Keys) -> dict[str, Any]:
    created = await submit(client, keys, await application_body(client, pool, keys["applicant"]))
    assert created.status_code == 201, created.text
    body: dict[str, Any] = created.json()
    return body


async def _eventually(check: Callable[[], Awaitable[Any]], what: str, timeout: float = 60) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        found = await check()
        if found:
            return found
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"not in time: {what}")
        await asyncio.sleep(0.2)


async def _listed(client: httpx.AsyncClient, keys: Keys, **params: str) -> set[str]:
    response = await client.get(
        "/v1/registrations",
        params={"organisation_id": keys.organisation, **params},
        headers=keys.headers("viewer"),
    )
    assert response.status_code == 200, response.text
    return {item["id"] for item in response.json()["items"]}


async def _stats(client: httpx.AsyncClient, keys: Keys) -> dict[str, Any]:
    response = await client.get(
        "/v1/registrations/stats",
        params={"organisation_id": keys.organisation},
        headers=keys.headers("viewer"),
    )
    assert response.status_code == 200, response.text
    stats: dict[str, Any] = response.json()
    return stats


async def _search_attributes(env: WorkflowEnvironment, app_id: str, stage: str, lifecycle: str) -> None:
    handle = env.client.get_workflow_handle(registration_workflow_id(app_id))

    async def shown() -> bool:
        attrs = (await handle.describe()).typed_search_attributes
        return (attrs.get(STAGE), attrs.get(LIFECYCLE)) == (stage, lifecycle)

    await _eventually(shown, f"search attributes {stage}/{lifecycle}", timeout=20)


async def _ended_everywhere(
    client: httpx.AsyncClient,
    env: WorkflowEnvironment,
    keys: Keys,
    app_id: str,
    *,
    how: str,
    last_event: str,
) -> None:
    """Once the service has ended (``how``: terminated or reclaimed), nothing says active."""
    app = (await client.get(f"/v1/applications/{app_id}", headers=keys.headers("applicant"))).json()
    assert (app["stage"], app["status"], app["lifecycle"], app["service_state"]) == (
        "closed",
        how,
        how,
        "quarantined",
    )
    assert app["next_deadline_kind"] == "quarantine_end"
    entries = (
        await client.get(f"/v1/applications/{app_id}/timeline", headers=keys.headers("applicant"))
    ).json()["entries"]
    last = entries[-1]
    assert (last["event_type"], last["stage"], last["status"], last["lifecycle"], last["service_state"]) == (
        last_event,
        "closed",
        how,
        how,
        "quarantined",
    )
    assert entries[-2]["lifecycle"] in ("in_service", "restricted", "suspended", "frozen")
    await _search_attributes(env, app_id, "closed", how)
    assert app_id not in await _listed(client, keys, stage="active")
    assert app_id not in await _listed(client, keys, lifecycle="in_service")
    assert app_id in await _listed(client, keys, stage="closed", status=how)
    assert app_id in await _listed(client, keys, lifecycle=how)
    assert app_id in await _listed(client, keys, service_state="quarantined")
    stats = await _stats(client, keys)
    assert (stats["in_service"], stats["by_lifecycle"].get(how), stats["by_stage"].get("active")) == (
        0,
        1,
        None,
    )
    assert {(r["lifecycle"], r["total"]) for r in stats["by_lifecycle_and_carrier"]} == {(how, 1)}


async def test_a_terminated_number_is_no_longer_active_anywhere(
    client: httpx.AsyncClient, pool: asyncpg.Pool, own_keys: Keys, temporal_env: WorkflowEnvironment
) -> None:
    submitted = await _submitted(client, pool, own_keys)
    app_id = submitted["id"]
    assert submitted["lifecycle"] == "in_review"
    assert app_id in await _listed(client, own_keys, lifecycle="in_review")

    active = await activate(client, own_keys, app_id)
    assert (active["stage"], active["lifecycle"], active["next_deadline_kind"]) == (
        "active",
        "in_service",
        "billing",
    )
    await _search_attributes(temporal_env, app_id, "active", "in_service")
    assert app_id in await _listed(client, own_keys, stage="active", service_state="active")
    stats = await _stats(client, own_keys)
    assert (stats["in_service"], stats["by_lifecycle"], stats["by_stage"]) == (
        1,
        {"in_service": 1},
        {"active": 1},
    )

    terminated = await client.post(
        f"/v1/applications/{app_id}/termination",
        json={"reason": "moved to another number"},
        headers=own_keys.headers("applicant"),
    )
    assert terminated.status_code == 200, terminated.text
    assert (terminated.json()["stage"], terminated.json()["lifecycle"]) == ("closed", "terminated")
    await _ended_everywhere(
        client, temporal_env, own_keys, app_id, how="terminated", last_event="ServiceTerminated"
    )
    # And the number is not payable or terminable as if it were in service.
    again = await client.post(f"/v1/applications/{app_id}/termination", headers=own_keys.headers("applicant"))
    assert again.status_code == 409
    assert again.json()["registration"]["lifecycle"] == "terminated"


# Arrears in seconds: a bill every second, each arrears stage a second, so the
# prepayment runs out and the number is reclaimed while the test waits.
FAST_ARREARS = {
    "billing_cycle": timedelta(seconds=1),
    "arrears_grace": timedelta(seconds=1),
    "arrears_restricted": timedelta(seconds=1),
    "arrears_suspended": timedelta(seconds=1),
    "arrears_frozen": timedelta(seconds=1),
}


@pytest.fixture
async def fast_client(
    stack_settings: Settings, api_settings: ApiSettings, api_worker: Worker
) -> AsyncIterator[httpx.AsyncClient]:
    """An API whose registrations take their after-activation durations from
    FAST_ARREARS (resolved at submission), served by the session's worker."""
    settings = stack_settings.model_copy(update={"carrier_overrides": {"china_unicom": FAST_ARREARS}})
    app = create_app(settings, api_settings)
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c,
    ):
        yield c


async def test_a_number_reclaimed_for_arrears_is_no_longer_active_anywhere(
    fast_client: httpx.AsyncClient, pool: asyncpg.Pool, own_keys: Keys, temporal_env: WorkflowEnvironment
) -> None:
    app_id = (await _submitted(fast_client, pool, own_keys))["id"]
    await activate(fast_client, own_keys, app_id)

    async def reclaimed() -> dict[str, Any] | None:
        app: dict[str, Any] = (
            await fast_client.get(f"/v1/applications/{app_id}", headers=own_keys.headers("applicant"))
        ).json()
        return app if app["service_state"] == "quarantined" else None

    app = await _eventually(reclaimed, "reclaim for arrears")
    assert app["arrears_stage"] == "reclaimed"
    await _ended_everywhere(
        fast_client, temporal_env, own_keys, app_id, how="reclaimed", last_event="NumberReclaimed"
    )


async def test_money_paid_before_an_activation_that_never_came_is_owed_back(
    client: httpx.AsyncClient, pool: asyncpg.Pool, api_keys: Keys
) -> None:
    op = api_keys.headers("operator")

    async def paid(amount: int | None = None) -> tuple[str, int]:
        app_id = (await _submitted(client, pool, api_keys))["id"]
        approved = await client.post(
            f"/v1/applications/{app_id}/decision", json={"decision": "approve"}, headers=op
        )
        assert approved.status_code == 200, approved.text
        amount = amount or approved.json()["fees"]["first_prepayment_fen"]
        payment = await client.post(
            f"/v1/applications/{app_id}/payments",
            json={"amount_fen": amount},
            headers=api_keys.headers("applicant", **{"Idempotency-Key": str(uuid.uuid4())}),
        )
        assert payment.status_code == 200, payment.text
        return app_id, amount

    async def closing_entry(app_id: str) -> dict[str, Any]:
        entries: list[dict[str, Any]] = (
            await client.get(f"/v1/applications/{app_id}/timeline", headers=api_keys.headers("applicant"))
        ).json()["entries"]
        return entries[-1]

    # Withdrawn after paying in full: all of it is owed back.
    withdrawn_id, amount = await paid()
    withdrawn = await client.post(
        f"/v1/applications/{withdrawn_id}/withdraw",
        json={"reason": "changed our mind"},
        headers=api_keys.headers("applicant"),
    )
    assert withdrawn.status_code == 200, withdrawn.text
    state = withdrawn.json()
    assert (state["status"], state["lifecycle"], state["paid_fen"], state["refund_owed_fen"]) == (
        "withdrawn",
        "closed",
        amount,
        amount,
    )
    entry = await closing_entry(withdrawn_id)
    assert (entry["event_type"], entry["refund_owed_fen"]) == ("ApplicationWithdrawn", amount)
    shown = (
        await client.get(f"/v1/applications/{withdrawn_id}", headers=api_keys.headers("applicant"))
    ).json()
    assert shown["refund_owed_fen"] == amount

    # A part payment, then withdrawn while the rest is still due: that part.
    partial_id, part = await paid(10_000)
    await client.post(f"/v1/applications/{partial_id}/withdraw", headers=api_keys.headers("applicant"))
    assert (await closing_entry(partial_id))["refund_owed_fen"] == part

    # Verification failed after payment: owed back too.
    failed_id, amount = await paid()
    failed = await client.post(
        f"/v1/applications/{failed_id}/verification",
        json={"outcome": "fail", "reason": "the legal representative's ID does not match"},
        headers=op,
    )
    assert failed.status_code == 200, failed.text
    assert (failed.json()["status"], failed.json()["refund_owed_fen"]) == ("verification_failed", amount)
    assert (await closing_entry(failed_id))["refund_owed_fen"] == amount

    # Nothing paid, nothing owed.
    unpaid_id = (await _submitted(client, pool, api_keys))["id"]
    unpaid = await client.post(
        f"/v1/applications/{unpaid_id}/withdraw", headers=api_keys.headers("applicant")
    )
    assert unpaid.json()["refund_owed_fen"] == 0
    assert (await closing_entry(unpaid_id))["refund_owed_fen"] is None

"""The number in service, through the HTTP API: after ACTIVE the registration's
workflow continues as the service workflow under the same id, and these routes
reach its Updates (suspend, resume, terminate, confirm real-name, report a
change of details)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from tests.api.fixtures import Keys, activate
from workflows.contracts import registration_workflow_id
from workflows.service_contracts import QUERY_SERVICE_STATUS, ServiceStatus


@pytest.fixture
async def active(client: httpx.AsyncClient, api_keys: Keys, submitted: dict[str, Any]) -> dict[str, Any]:
    """A registration whose number is in service."""
    return await activate(client, api_keys, submitted["id"])


async def _timeline(client: httpx.AsyncClient, api_keys: Keys, app_id: str) -> list[dict[str, Any]]:
    response = await client.get(f"/v1/applications/{app_id}/timeline", headers=api_keys.headers("applicant"))
    assert response.status_code == 200, response.text
    entries: list[dict[str, Any]] = response.json()["entries"]
    return entries


async def test_operator_suspends_then_resumes(
    client: httpx.AsyncClient, pool: asyncpg.Pool, api_keys: Keys, active: dict[str, Any]
) -> None:
    app_id = active["id"]
    op = api_keys.headers("operator")
    assert (active["service_state"], active["arrears_stage"]) == ("active", "none")

    for body in ({}, {"reason": ""}, {"reason": "   "}):
        missing = await client.post(f"/v1/applications/{app_id}/suspension", json=body, headers=op)
        assert missing.status_code == 422, (body, missing.text)
        assert missing.headers["content-type"] == "application/problem+json"
        assert [e["field"] for e in missing.json()["errors"]] == ["reason"], body
    by_holder = await client.post(
        f"/v1/applications/{app_id}/suspension", json={"reason": "x"}, headers=api_keys.headers("applicant")
    )
    assert by_holder.status_code == 403

    suspended = await client.post(
        f"/v1/applications/{app_id}/suspension",
        json={"reason": "complaints about marketing calls"},
        headers=op,
    )
    assert suspended.status_code == 200, suspended.text
    state = suspended.json()
    assert (state["stage"], state["status"], state["service_state"]) == ("active", "active", "suspended")
    assert state["version"] > active["version"]
    async with pool.acquire() as conn:
        status = await conn.fetchval(
            "SELECT status FROM number_inventory WHERE number = $1", active["number"]
        )
    assert status == "suspended"

    again = await client.post(f"/v1/applications/{app_id}/suspension", json={"reason": "again"}, headers=op)
    assert again.status_code == 409, again.text
    assert again.json()["code"] == "wrong_stage"
    assert again.json()["registration"]["service_state"] == "suspended"

    resumed = await client.post(
        f"/v1/applications/{app_id}/resumption", json={"reason": "holder stopped the calls"}, headers=op
    )
    assert resumed.status_code == 200, resumed.text
    assert resumed.json()["service_state"] == "active"
    not_held = await client.post(
        f"/v1/applications/{app_id}/resumption", json={"reason": "again"}, headers=op
    )
    assert not_held.status_code == 409
    assert not_held.json()["registration"]["service_state"] == "active"

    entries = await _timeline(client, api_keys, app_id)
    assert [(e["event_type"], e["service_state"], e["reason"]) for e in entries[-2:]] == [
        ("OperatorSuspended", "suspended", "complaints about marketing calls"),
        ("OperatorResumed", "active", "holder stopped the calls"),
    ]
    assert entries[-1]["actor"] == "operator"  # applicants learn the role, not the operator
    current = (await client.get(f"/v1/applications/{app_id}", headers=api_keys.headers("applicant"))).json()
    assert current["service_state"] == "active"
    assert current["version"] == entries[-1]["version"]


async def test_service_actions_before_activation_are_409(
    client: httpx.AsyncClient, api_keys: Keys, submitted: dict[str, Any]
) -> None:
    app_id = submitted["id"]
    calls = [
        ("suspension", "operator", {"reason": "complaints"}),
        ("resumption", "operator", {"reason": "resolved"}),
        ("realname-confirmation", "operator", {"reason": "checked"}),
        ("termination", "applicant", {"reason": "no longer needed"}),
        (
            "details-changes",
            "applicant",
            {
                "changed_at": datetime.now(UTC).isoformat(),
                "fields": ["contact_address"],
                "values": {"contact_address": "广东省深圳市南山区科技园南区 2 号"},
            },
        ),
    ]
    for action, role, body in calls:
        response = await client.post(
            f"/v1/applications/{app_id}/{action}", json=body, headers=api_keys.headers(role)
        )
        assert response.status_code == 409, (action, response.text)
        problem = response.json()
        assert problem["code"] == "wrong_stage", action
        assert "not in service" in problem["detail"], action
        assert "handler" not in problem["detail"], action  # the SDK's wording stays inside
        assert (problem["registration"]["status"], problem["registration"]["service_state"]) == (
            "in_review",
            None,
        )
    # Bad input is refused before the workflow is asked, whatever the stage.
    blank = await client.post(
        f"/v1/applications/{app_id}/suspension", json={"reason": " "}, headers=api_keys.headers("operator")
    )
    assert blank.status_code == 422
    other = await client.post(
        f"/v1/applications/{app_id}/termination", json={}, headers=api_keys.headers("other_applicant")
    )
    assert other.status_code == 404


async def test_registration_steps_after_activation_are_409(
    client: httpx.AsyncClient, api_keys: Keys, active: dict[str, Any]
) -> None:
    app_id = active["id"]
    op = api_keys.headers("operator")
    calls = [
        ("decision", op, {"decision": "approve"}),
        ("verification", op, {"outcome": "pass", "reason": "again"}),
        ("withdraw", api_keys.headers("applicant"), {"reason": "changed our mind"}),
    ]
    for action, headers, body in calls:
        response = await client.post(f"/v1/applications/{app_id}/{action}", json=body, headers=headers)
        assert response.status_code == 409, (action, response.text)
        problem = response.json()
        assert problem["code"] == "wrong_stage", action
        assert "in service" in problem["detail"], action
        assert "handler" not in problem["detail"], action  # the SDK's wording stays inside
        assert problem["registration"]["service_state"] == "active", action


async def test_service_actions_once_the_workflow_has_ended_are_409(
    client: httpx.AsyncClient, api_keys: Keys, active: dict[str, Any], temporal_env: WorkflowEnvironment
) -> None:
    app_id = active["id"]
    await temporal_env.client.get_workflow_handle(registration_workflow_id(app_id)).terminate("test")
    response = await client.post(
        f"/v1/applications/{app_id}/suspension",
        json={"reason": "complaints"},
        headers=api_keys.headers("operator"),
    )
    assert response.status_code == 409, response.text
    problem = response.json()
    assert problem["code"] == "wrong_stage"
    assert "ended" in problem["detail"]


async def test_holder_terminates_and_the_number_goes_to_quarantine(
    client: httpx.AsyncClient, pool: asyncpg.Pool, api_keys: Keys, active: dict[str, Any]
) -> None:
    app_id = active["id"]
    other = await client.post(
        f"/v1/applications/{app_id}/termination", json={}, headers=api_keys.headers("other_applicant")
    )
    assert other.status_code == 404
    too_long = await client.post(
        f"/v1/applications/{app_id}/termination",
        json={"reason": "x" * 1001},
        headers=api_keys.headers("applicant"),
    )
    assert too_long.status_code == 422
    assert too_long.json()["errors"][0]["field"] == "reason"

    terminated = await client.post(
        f"/v1/applications/{app_id}/termination",
        json={"reason": "moved to another number"},
        headers=api_keys.headers("applicant"),
    )
    assert terminated.status_code == 200, terminated.text
    state = terminated.json()
    # The registration is over: closed as terminated, the number in quarantine.
    assert (state["stage"], state["status"], state["lifecycle"], state["service_state"]) == (
        "closed",
        "terminated",
        "terminated",
        "quarantined",
    )
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT status, registration_id, previous_registration_id, quarantine_until "
            "FROM number_inventory WHERE number = $1",
            active["number"],
        )
    assert (row["status"], row["registration_id"], row["previous_registration_id"]) == (
        "quarantined",
        None,
        app_id,
    )
    assert row["quarantine_until"] > datetime.now(UTC) + timedelta(days=80)

    entries = await _timeline(client, api_keys, app_id)
    last = entries[-1]
    assert (last["event_type"], last["service_state"], last["actor_role"]) == (
        "ServiceTerminated",
        "quarantined",
        "applicant",
    )
    assert last["reason"] == "moved to another number"

    twice = await client.post(f"/v1/applications/{app_id}/termination", headers=api_keys.headers("applicant"))
    assert twice.status_code == 409, twice.text
    assert twice.json()["code"] == "wrong_stage"
    assert twice.json()["registration"]["service_state"] == "quarantined"
    suspend = await client.post(
        f"/v1/applications/{app_id}/suspension", json={"reason": "late"}, headers=api_keys.headers("operator")
    )
    assert suspend.status_code == 409


async def test_operator_confirms_realname(
    client: httpx.AsyncClient, api_keys: Keys, active: dict[str, Any]
) -> None:
    app_id = active["id"]
    op = api_keys.headers("operator")
    assert active["realname_stage"] == "current"

    no_reason = await client.post(f"/v1/applications/{app_id}/realname-confirmation", json={}, headers=op)
    assert no_reason.status_code == 422
    assert no_reason.json()["errors"][0]["field"] == "reason"

    confirmed = await client.post(
        f"/v1/applications/{app_id}/realname-confirmation",
        json={"reason": "re-checked against the business licence"},
        headers=op,
    )
    assert confirmed.status_code == 200, confirmed.text
    state = confirmed.json()
    assert (state["service_state"], state["realname_stage"]) == ("active", "current")
    # The next confirmation is due a reconfirmation interval (a year) from now.
    due = datetime.fromisoformat(state["realname_due_at"])
    assert due > datetime.now(UTC) + timedelta(days=300)
    assert due > datetime.fromisoformat(active["realname_due_at"]), "moved on from the one at activation"
    last = (await _timeline(client, api_keys, app_id))[-1]
    assert (last["event_type"], last["service_state"]) == ("RealnameConfirmed", "active")


ADDRESS = "广东省深圳市福田区深南大道 6008 号"


async def test_details_change_report_returns_its_deadline(
    client: httpx.AsyncClient, api_keys: Keys, active: dict[str, Any]
) -> None:
    app_id = active["id"]
    url = f"/v1/applications/{app_id}/details-changes"
    now = datetime.now(UTC)
    address = {"contact_address": ADDRESS}

    invalid = [
        (
            {
                "changed_at": (now + timedelta(days=1)).isoformat(),
                "fields": ["contact_address"],
                "values": address,
            },
            "changed_at",
        ),
        (
            {"changed_at": "2026-11-20T09:00:00", "fields": ["contact_address"], "values": address},
            "changed_at",
        ),
        ({"changed_at": now.isoformat(), "fields": [], "values": {}}, "fields"),
        ({"changed_at": now.isoformat(), "fields": [" "], "values": {}}, "fields[0]"),
    ]
    for body, field in invalid:
        response = await client.post(url, json=body, headers=api_keys.headers("applicant"))
        assert response.status_code == 422, (body, response.text)
        assert [e["field"] for e in response.json()["errors"]] == [field], body

    changed_at = now - timedelta(days=1)
    reported = await client.post(
        url,
        json={"changed_at": changed_at.isoformat(), "fields": ["contact_address"], "values": address},
        headers=api_keys.headers("applicant"),
    )
    assert reported.status_code == 200, reported.text
    result = reported.json()
    due_by = datetime.fromisoformat(result["due_by"])
    # 10 Chinese working days: two weeks or more, holidays add to it.
    assert changed_at + timedelta(days=12) <= due_by <= changed_at + timedelta(days=30)
    assert result["late"] is False
    assert result["registration"]["id"] == app_id
    assert result["registration"]["service_state"] == "active"

    late = await client.post(
        url,
        json={
            "changed_at": (now - timedelta(days=90)).isoformat(),
            "fields": ["legal_representative.phone"],
            "values": {"legal_representative.phone": "139-0013-9000"},
        },
        headers=api_keys.headers("operator"),
    )
    assert late.status_code == 200, late.text
    assert late.json()["late"] is True
    assert datetime.fromisoformat(late.json()["due_by"]) < now

    entries = await _timeline(client, api_keys, app_id)
    assert [e["event_type"] for e in entries[-2:]] == ["DetailsChangeReported", "DetailsChangeReported"]
    assert entries[-1]["actor_role"] == "operator"


async def test_a_details_change_names_application_fields_and_carries_checked_values(
    client: httpx.AsyncClient, api_keys: Keys, active: dict[str, Any], temporal_env: WorkflowEnvironment
) -> None:
    """Only the application's field names, each with a new value checked like the
    application's; the new values become the holder's current details (summary,
    masked; the service's Query) and the timeline shows fields, due date and lateness."""
    app_id = active["id"]
    url = f"/v1/applications/{app_id}/details-changes"
    when = (datetime.now(UTC) - timedelta(days=2)).isoformat()

    async def report(fields: list[str], values: dict[str, Any]) -> httpx.Response:
        return await client.post(
            url,
            json={"changed_at": when, "fields": fields, "values": values},
            headers=api_keys.headers("applicant"),
        )

    refused: list[tuple[list[str], dict[str, Any], list[tuple[str, str]]]] = [
        (
            ["no_such_field"],
            {"no_such_field": "x"},
            [("fields[0]", "unknown_field")],
        ),
        (["requested_number"], {"requested_number": "4000000001"}, [("fields[0]", "not_a_detail")]),
        (["contact_address"], {}, [("values.contact_address", "required")]),
        (
            ["contact_address"],
            {"contact_address": ADDRESS, "package": "basic"},
            [("values.package", "not_named")],
        ),
        (
            ["legal_representative.phone"],
            {"legal_representative.phone": "12345"},
            [("values.legal_representative.phone", "invalid_phone")],
        ),
        (
            ["legal_representative.id_number"],
            {"legal_representative.id_number": "110101198001011234"},
            [("values.legal_representative.id_number", "invalid_check_digit")],
        ),
        (["destination_numbers"], {"destination_numbers": []}, [("values.destination_numbers", "too_few")]),
        (["industry"], {"industry": "no_such_industry"}, [("values.industry", "unknown_industry")]),
    ]
    for fields, values, errors in refused:
        response = await report(fields, values)
        assert response.status_code == 422, (fields, response.text)
        assert [(e["field"], e["code"]) for e in response.json()["errors"]] == errors, fields
    assert [e["event_type"] for e in await _timeline(client, api_keys, app_id)].count(
        "DetailsChangeReported"
    ) == 0

    reported = await report(
        ["contact_address", "legal_representative.phone", "destination_numbers"],
        {
            "contact_address": ADDRESS,
            "legal_representative.phone": "+86 139 0013 9000",
            "destination_numbers": ["0755-12345678", "13900139001"],
        },
    )
    assert reported.status_code == 200, reported.text
    assert reported.json()["late"] is False

    # The holder's current details: in the read model's summary (staff), masked...
    staff_view = (await client.get(f"/v1/applications/{app_id}", headers=api_keys.headers("operator"))).json()
    summary = staff_view["summary"]
    assert summary["contact_address"] == ADDRESS
    assert summary["legal_representative"]["phone"] == "139****9000"
    assert summary["destination_numbers"] == ["075*****5678", "139****9001"]
    assert summary["destination_count"] == 2
    assert "13900139000" not in json.dumps(staff_view)
    # ... and in the service's Query.
    handle = temporal_env.client.get_workflow_handle(registration_workflow_id(app_id))
    live = await handle.query(QUERY_SERVICE_STATUS, result_type=ServiceStatus)
    assert live.current_details == {
        "contact_address": ADDRESS,
        "legal_representative.phone": "139****9000",
        "destination_numbers": ["075*****5678", "139****9001"],
    }
    # The timeline says which details changed, by when they were due, and whether late.
    last = (await _timeline(client, api_keys, app_id))[-1]
    change = last["details_change"]
    assert last["event_type"] == "DetailsChangeReported"
    assert change["fields"] == ["contact_address", "destination_numbers", "legal_representative.phone"]
    assert change["late"] is False and change["due_by"] == reported.json()["due_by"]
    assert change["values"]["legal_representative.phone"] == "139****9000"

    # A later report of the same detail replaces it; the others stay.
    again = await report(
        ["legal_representative"],
        {"legal_representative": {"name": "李娜", "id_number": "11010519491231002X", "phone": "13700137000"}},
    )
    assert again.status_code == 200, again.text
    live = await handle.query(QUERY_SERVICE_STATUS, result_type=ServiceStatus)
    assert live.current_details["legal_representative"] == {
        "name": "李娜",
        "id_number": "110***********002X",
        "phone": "137****7000",
    }
    assert "legal_representative.phone" not in live.current_details
    assert live.current_details["contact_address"] == ADDRESS

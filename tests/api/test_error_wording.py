"""Errors name the right thing: the field at fault, in words that fit the
operation and the state the registration is in."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import httpx

from tests.api.fixtures import Keys, application_body, upload
from tests.api.fixtures import activate as _activate


async def test_payment_without_idempotency_key_speaks_of_payments(
    client: httpx.AsyncClient, api_keys: Keys, submitted: dict[str, Any]
) -> None:
    response = await client.post(
        f"/v1/applications/{submitted['id']}/payments",
        json={"amount_fen": 100},
        headers=api_keys.headers("applicant"),
    )
    assert response.status_code == 422
    problem = response.json()
    assert "payment" in problem["detail"] and "application" not in problem["detail"]
    assert problem["errors"] == [
        {
            "field": "Idempotency-Key",
            "code": "missing",
            "message": "Send a unique value (e.g. a UUID) per payment.",
        }
    ]


async def test_decision_errors_point_at_the_field(
    client: httpx.AsyncClient, api_keys: Keys, submitted: dict[str, Any]
) -> None:
    url = f"/v1/applications/{submitted['id']}/decision"
    op = api_keys.headers("operator")
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"decision": "reject"}, "reason_code", "missing"),
        # A rejection is final: fields to change would be dropped, so they are refused.
        (
            {"decision": "reject", "reason_code": "documents_invalid", "fields": ["contact_address"]},
            "fields",
            "not_allowed",
        ),
        (
            {"decision": "reject", "reason_code": "documents_invalid", "documents": ["business_licence"]},
            "documents",
            "not_allowed",
        ),
        ({"decision": "approve", "reason_code": "other"}, "reason_code", "not_allowed"),
        ({"decision": "approve", "fields": ["contact_address"]}, "fields", "not_allowed"),
        ({"decision": "request_changes"}, "fields", "missing"),
    ]
    for body, field, code in cases:
        response = await client.post(url, json=body, headers=op)
        assert response.status_code == 422, (body, response.text)
        errors = response.json()["errors"]
        assert [(e["field"], e["code"]) for e in errors] == [(field, code)], body
        assert errors[0]["message"].endswith("."), body
    still = await client.get(f"/v1/applications/{submitted['id']}", headers=op)
    assert still.json()["status"] == "in_review"


async def test_the_timeline_rejection_entry_carries_the_code_and_the_reason(
    client: httpx.AsyncClient, api_keys: Keys, submitted: dict[str, Any]
) -> None:
    app_id = submitted["id"]
    rejected = await client.post(
        f"/v1/applications/{app_id}/decision",
        json={"decision": "reject", "reason_code": "identity_mismatch", "reason": "ID photo does not match"},
        headers=api_keys.headers("operator"),
    )
    assert rejected.status_code == 200, rejected.text
    timeline = await client.get(f"/v1/applications/{app_id}/timeline", headers=api_keys.headers("applicant"))
    entries = timeline.json()["entries"]
    rejection = next(e for e in entries if e["event_type"] == "ApplicationRejected")
    assert (rejection["reason_code"], rejection["reason"], rejection["status"]) == (
        "identity_mismatch",
        "ID photo does not match",
        "rejected",
    )
    assert all(e["reason_code"] is None for e in entries if e is not rejection)


async def test_missing_documents_are_named_with_the_right_article(
    client: httpx.AsyncClient, pool: asyncpg.Pool, api_keys: Keys
) -> None:
    body = await application_body(client, pool, api_keys["applicant"])
    body["documents"] = [
        {"document_id": (await upload(client, api_keys["applicant"], "legal_rep_id"))["id"]},
    ]
    evaluated = await client.post(
        "/v1/applications/evaluate", json=body, headers=api_keys.headers("applicant")
    )
    messages = [e["message"] for e in evaluated.json()["errors"] if e["code"] == "missing_document"]
    assert any(m.startswith("An application_form document is required") for m in messages), messages
    assert any(m.startswith("A business_licence document is required") for m in messages), messages


async def test_api_key_role_errors_name_organisation_id(client: httpx.AsyncClient, api_keys: Keys) -> None:
    admin = api_keys.headers("admin")
    for body, message in (
        ({"role": "operator", "organisation_id": "org_acme", "name": "x"}, "An operator key is not bound"),
        ({"role": "viewer", "organisation_id": "org_acme", "name": "x"}, "A viewer key is not bound"),
        ({"role": "applicant", "name": "x"}, "An applicant key acts for one organisation"),
    ):
        response = await client.post("/v1/api-keys", json=body, headers=admin)
        assert response.status_code == 422, response.text
        (error,) = response.json()["errors"]
        assert error["field"] == "organisation_id", body
        assert error["message"].startswith(message), error


async def test_withdraw_after_termination_says_the_number_is_in_quarantine(
    client: httpx.AsyncClient, api_keys: Keys, submitted: dict[str, Any]
) -> None:
    app_id = submitted["id"]
    await _activate(client, api_keys, app_id)
    applicant = api_keys.headers("applicant")
    in_service = await client.post(f"/v1/applications/{app_id}/withdraw", json={}, headers=applicant)
    assert in_service.status_code == 409
    assert "the number is in service (active)" in in_service.json()["detail"]

    terminated = await client.post(
        f"/v1/applications/{app_id}/termination", json={"reason": "closing down"}, headers=applicant
    )
    assert terminated.status_code == 200, terminated.text
    withdrawn = await client.post(
        f"/v1/applications/{app_id}/withdraw",
        json={"reason": "changed our mind"},
        headers=api_keys.headers("applicant", **{"X-Request-ID": uuid.uuid4().hex}),
    )
    assert withdrawn.status_code == 409, withdrawn.text
    problem = withdrawn.json()
    assert problem["code"] == "wrong_stage"
    assert "in service" not in problem["detail"]
    assert "was terminated and is in quarantine until" in problem["detail"]
    assert problem["registration"]["service_state"] == "quarantined"

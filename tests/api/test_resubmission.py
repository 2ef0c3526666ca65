"""Resubmission does what the operator asked, through the HTTP API and the real
workflow: a requested number other than the one held moves the hold (or is
refused naming the field), every field and document kind the change request
named must change, and a resubmission can be checked first."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx

from tests.api.fixtures import PDF, PREFIX, Keys, application_body, submit
from tests.factories_inventory import add_fresh_numbers

NEW_ADDRESS = "广东省深圳市福田区深南大道 6008 号"


async def _in_changes_requested(
    client: httpx.AsyncClient, pool: asyncpg.Pool, keys: Keys, **request: Any
) -> tuple[str, dict[str, Any]]:
    body = await application_body(client, pool, keys["applicant"])
    created = await submit(client, keys, body)
    assert created.status_code == 201, created.text
    app_id = created.json()["id"]
    asked = await client.post(
        f"/v1/applications/{app_id}/decision",
        json={"decision": "request_changes", "reason": "please correct", **request},
        headers=keys.headers("operator"),
    )
    assert asked.status_code == 200, asked.text
    return app_id, body


async def _number(client: httpx.AsyncClient, keys: Keys, number: str) -> dict[str, Any]:
    found: dict[str, Any] = (
        await client.get(f"/v1/numbers/{number}", headers=keys.headers("operator"))
    ).json()
    return found


async def _staff_view(client: httpx.AsyncClient, keys: Keys, app_id: str) -> dict[str, Any]:
    shown: dict[str, Any] = (
        await client.get(f"/v1/applications/{app_id}", headers=keys.headers("operator"))
    ).json()
    return shown


async def test_a_resubmission_moves_the_hold_to_the_number_it_asks_for(
    client: httpx.AsyncClient, pool: asyncpg.Pool, api_keys: Keys
) -> None:
    app_id, body = await _in_changes_requested(client, pool, api_keys, fields=["requested_number"])
    old = body["requested_number"]
    old_tier = (await _number(client, api_keys, old))["tier"]
    candidates = await add_fresh_numbers(pool, 30, prefix=PREFIX)
    tiers = {n: (await _number(client, api_keys, n))["tier"] for n in candidates}
    # Another tier than the old number's where there is one, so the fees visibly follow.
    new = next((n for n in candidates if tiers[n] != old_tier), candidates[0])
    wanted = await _number(client, api_keys, new)

    resubmitted = await client.post(
        f"/v1/applications/{app_id}/resubmit",
        json={**body, "requested_number": new},
        headers=api_keys.headers("applicant"),
    )
    assert resubmitted.status_code == 200, resubmitted.text
    state = resubmitted.json()
    assert (state["status"], state["number"]) == ("in_review", new)
    assert (state["fees"]["tier"], state["fees"]["min_monthly_spend_fen"]) == (
        wanted["tier"],
        wanted["min_monthly_spend_fen"],
    )
    # What the operator reviews is the number held.
    shown = await _staff_view(client, api_keys, app_id)
    assert shown["number"] == shown["summary"]["requested_number"] == new
    assert shown["fees"]["tier"] == wanted["tier"]
    held = await _number(client, api_keys, new)
    assert (held["status"], held["registration_id"]) == ("held", app_id)
    assert (await _number(client, api_keys, old))["status"] == "available"

    approved = await client.post(
        f"/v1/applications/{app_id}/decision",
        json={"decision": "approve"},
        headers=api_keys.headers("operator"),
    )
    assert approved.status_code == 200, approved.text
    assert (approved.json()["number"], approved.json()["fees"]["tier"]) == (new, wanted["tier"])
    assert (await _number(client, api_keys, new))["status"] == "allocated"


async def test_a_resubmission_asking_for_a_number_taken_is_422_and_keeps_the_hold(
    client: httpx.AsyncClient, pool: asyncpg.Pool, api_keys: Keys
) -> None:
    app_id, body = await _in_changes_requested(client, pool, api_keys, fields=["requested_number"])
    old = body["requested_number"]
    taken_by = await submit(
        client,
        api_keys,
        await application_body(client, pool, api_keys["other_applicant"]),
        role="other_applicant",
    )
    taken = taken_by.json()["number"]

    refused = await client.post(
        f"/v1/applications/{app_id}/resubmit",
        json={**body, "requested_number": taken},
        headers=api_keys.headers("applicant"),
    )
    assert refused.status_code == 422, refused.text
    assert [(e["field"], e["code"]) for e in refused.json()["errors"]] == [
        ("requested_number", "number_unavailable")
    ]
    shown = await _staff_view(client, api_keys, app_id)
    assert (shown["status"], shown["number"], shown["summary"]["requested_number"]) == (
        "changes_requested",
        old,
        old,
    )
    assert (await _number(client, api_keys, old))["registration_id"] == app_id
    assert (await _number(client, api_keys, taken))["registration_id"] == taken_by.json()["id"]


async def test_a_resubmission_must_change_each_field_and_document_asked_for(
    client: httpx.AsyncClient, pool: asyncpg.Pool, api_keys: Keys
) -> None:
    app_id, body = await _in_changes_requested(
        client,
        pool,
        api_keys,
        fields=["contact_address", "legal_representative.phone"],
        documents=["business_licence"],
    )
    url = f"/v1/applications/{app_id}/resubmit"
    applicant = api_keys.headers("applicant")

    unchanged = await client.post(url, json=body, headers=applicant)
    assert unchanged.status_code == 422, unchanged.text
    assert [(e["field"], e["code"]) for e in unchanged.json()["errors"]] == [
        ("contact_address", "unchanged"),
        ("legal_representative.phone", "unchanged"),
        ("documents", "unchanged_document"),
    ]
    assert "business_licence" in unchanged.json()["errors"][2]["message"]

    # The phone typed another way is the same phone; the address did change.
    phone = body["legal_representative"]["phone"]
    retyped = f"{phone[:3]}-{phone[3:7]}-{phone[7:]}"
    partly = {
        **body,
        "contact_address": NEW_ADDRESS,
        "legal_representative": {**body["legal_representative"], "phone": retyped},
    }
    still = await client.post(url, json=partly, headers=applicant)
    assert [(e["field"], e["code"]) for e in still.json()["errors"]] == [
        ("legal_representative.phone", "unchanged"),
        ("documents", "unchanged_document"),
    ]

    # The same file uploaded again is no new document.
    licence = body["documents"][0]["document_id"]
    same_file = await client.post(
        f"/v1/documents/{licence}/replace",
        files={"file": ("l.pdf", PDF, "application/pdf")},
        headers=applicant,
    )
    assert same_file.status_code == 201, same_file.text
    documents = [{"document_id": same_file.json()["id"]}, *body["documents"][1:]]
    fixed = {**partly, "legal_representative": {**body["legal_representative"], "phone": "13900139000"}}
    still = await client.post(url, json={**fixed, "documents": documents}, headers=applicant)
    assert [(e["field"], e["code"]) for e in still.json()["errors"]] == [("documents", "unchanged_document")]

    new_file = await client.post(
        f"/v1/documents/{same_file.json()['id']}/replace",
        files={"file": ("l.pdf", PDF + b"% renewed\n", "application/pdf")},
        headers=applicant,
    )
    documents[0] = {"document_id": new_file.json()["id"]}
    accepted = await client.post(url, json={**fixed, "documents": documents}, headers=applicant)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["status"] == "in_review"


async def test_a_change_request_names_application_fields_and_catalogue_documents(
    client: httpx.AsyncClient, pool: asyncpg.Pool, api_keys: Keys
) -> None:
    """Otherwise no resubmission could ever answer it."""
    body = await application_body(client, pool, api_keys["applicant"])
    app_id = (await submit(client, api_keys, body)).json()["id"]
    asked = await client.post(
        f"/v1/applications/{app_id}/decision",
        json={"decision": "request_changes", "fields": ["contact_adress"], "documents": ["licence"]},
        headers=api_keys.headers("operator"),
    )
    assert asked.status_code == 422, asked.text
    assert [(e["field"], e["code"]) for e in asked.json()["errors"]] == [
        ("documents[0]", "unknown_document_kind"),
        ("fields[0]", "unknown_field"),
    ]


async def test_a_resubmission_can_be_evaluated_first(
    client: httpx.AsyncClient, pool: asyncpg.Pool, api_keys: Keys
) -> None:
    app_id, body = await _in_changes_requested(client, pool, api_keys, fields=["contact_address"])
    url = f"/v1/applications/{app_id}/resubmission/evaluate"
    applicant = api_keys.headers("applicant")

    # The plain evaluation calls the number this application holds unavailable...
    plain = (await client.post("/v1/applications/evaluate", json=body, headers=applicant)).json()
    assert [(e["field"], e["code"]) for e in plain["errors"]] == [("requested_number", "number_unavailable")]
    # ... the resubmission's counts it as its own, and says what is still unchanged.
    evaluated = await client.post(url, json=body, headers=applicant)
    assert evaluated.status_code == 200, evaluated.text
    assert evaluated.json()["submittable"] is False
    assert [(e["field"], e["code"]) for e in evaluated.json()["errors"]] == [("contact_address", "unchanged")]

    corrected = {**body, "contact_address": NEW_ADDRESS}
    assert (await client.post(url, json=corrected, headers=applicant)).json() == {
        "submittable": True,
        "errors": [],
        "errors_omitted": 0,
        "required_documents": ["business_licence", "legal_rep_id", "application_form"],
    }
    # Another carrier, or a number someone else holds, is said before resubmitting.
    taken = (
        await submit(
            client,
            api_keys,
            await application_body(client, pool, api_keys["other_applicant"]),
            role="other_applicant",
        )
    ).json()["number"]
    wrong = (await client.post(url, json={**corrected, "requested_number": taken}, headers=applicant)).json()
    assert [(e["field"], e["code"]) for e in wrong["errors"]] == [("requested_number", "number_unavailable")]
    # Nothing was stored: the application still waits for its resubmission.
    assert (await _staff_view(client, api_keys, app_id))["status"] == "changes_requested"

    other = await client.post(url, json=corrected, headers=api_keys.headers("other_applicant"))
    assert other.status_code == 404
    resubmitted = await client.post(f"/v1/applications/{app_id}/resubmit", json=corrected, headers=applicant)
    assert resubmitted.status_code == 200, resubmitted.text
    late = await client.post(url, json=corrected, headers=applicant)
    assert late.status_code == 409
    assert (late.json()["code"], late.json()["registration"]["status"]) == ("wrong_stage", "in_review")

"""Applications through the HTTP API, end to end with the real workflow."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from api.services import applications as applications_service
from tests.api.fixtures import PDF, PREFIX, Keys, application_body, submit, upload
from tests.domain.factories import AGENT_ID
from tests.factories_inventory import add_fresh_numbers
from workflows.contracts import registration_workflow_id


def idem(keys: Keys, role: str = "applicant", key: str | None = None) -> dict[str, str]:
    return keys.headers(role, **{"Idempotency-Key": key or str(uuid.uuid4())})


async def test_submit_answers_201_with_the_state_after_apply(
    client: httpx.AsyncClient, pool: asyncpg.Pool, api_keys: Keys
) -> None:
    body = await application_body(client, pool, api_keys["applicant"])
    response = await submit(client, api_keys, body)
    assert response.status_code == 201, response.text
    created = response.json()
    assert response.headers["location"] == f"/v1/applications/{created['id']}"
    assert "idempotent-replayed" not in response.headers
    assert created["organisation_id"] == api_keys.organisation
    assert created["number"] == body["requested_number"]
    assert created["number_display"] == f"400-{body['requested_number'][3:6]}-{body['requested_number'][6:]}"
    assert (created["stage"], created["status"], created["waiting_for"]) == (
        "audit",
        "in_review",
        "operator_decision",
    )
    assert created["summary"] is None  # staff only

    fetched = await client.get(
        created["id"].join(["/v1/applications/", ""]), headers=api_keys.headers("applicant")
    )
    assert fetched.json() == created

    number = await client.get(f"/v1/numbers/{body['requested_number']}", headers=api_keys.headers("operator"))
    assert number.json()["status"] == "held"
    assert number.json()["registration_id"] == created["id"]

    staff_view = await client.get(f"/v1/applications/{created['id']}", headers=api_keys.headers("viewer"))
    summary = staff_view.json()["summary"]
    # Personal data reaches dashboards masked only.
    assert body["legal_representative"]["id_number"] not in str(summary)
    assert summary["legal_representative"]["id_number"].count("*") == 11


async def test_same_key_same_body_returns_the_same_application(
    client: httpx.AsyncClient, pool: asyncpg.Pool, api_keys: Keys
) -> None:
    body = await application_body(client, pool, api_keys["applicant"])
    headers = idem(api_keys)
    first = await client.post("/v1/applications", json=body, headers=headers)
    # Same data, other key order: still the same request.
    reordered = dict(reversed(list(body.items())))
    again = await client.post("/v1/applications", json=reordered, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["location"] == first.headers["location"]


async def test_same_key_different_body_is_409(
    client: httpx.AsyncClient, pool: asyncpg.Pool, api_keys: Keys
) -> None:
    body = await application_body(client, pool, api_keys["applicant"])
    headers = idem(api_keys)
    first = await client.post("/v1/applications", json=body, headers=headers)
    assert first.status_code == 201
    changed = await client.post("/v1/applications", json={**body, "package": "premium"}, headers=headers)
    assert changed.status_code == 409
    assert changed.json()["code"] == "idempotency_key_reused"
    assert changed.json()["application_id"] == first.json()["id"]


async def test_the_same_key_in_another_organisation_is_another_application(
    client: httpx.AsyncClient, pool: asyncpg.Pool, api_keys: Keys
) -> None:
    key = str(uuid.uuid4())
    mine = await application_body(client, pool, api_keys["applicant"])
    theirs = await application_body(client, pool, api_keys["other_applicant"])
    a = await client.post("/v1/applications", json=mine, headers=idem(api_keys, key=key))
    b = await client.post("/v1/applications", json=theirs, headers=idem(api_keys, "other_applicant", key=key))
    assert a.status_code == b.status_code == 201
    assert a.json()["id"] != b.json()["id"]


async def test_concurrent_identical_posts_create_one_application_and_one_workflow(
    client: httpx.AsyncClient, pool: asyncpg.Pool, api_keys: Keys, temporal_env: WorkflowEnvironment
) -> None:
    company = f"并发测试 {uuid.uuid4().hex[:8]} 有限公司"
    body = await application_body(client, pool, api_keys["applicant"], company_name=company)
    headers = idem(api_keys)
    responses = await asyncio.gather(
        *(client.post("/v1/applications", json=body, headers=headers) for _ in range(12))
    )
    assert {r.status_code for r in responses} == {201}, [r.text for r in responses if r.status_code != 201]
    ids = {r.json()["id"] for r in responses}
    assert len(ids) == 1
    assert sum(1 for r in responses if "idempotent-replayed" not in r.headers) == 1
    (app_id,) = ids
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM application WHERE company_name = $1", company) == 1
        submitted = await conn.fetchval(
            "SELECT count(*) FROM domain_event WHERE stream_id = $1 AND event_type = 'ApplicationSubmitted'",
            app_id,
        )
    assert submitted == 1
    runs = [
        w
        async for w in temporal_env.client.list_workflows(
            f"WorkflowId = '{registration_workflow_id(app_id)}'"
        )
    ]
    assert len(runs) <= 1  # visibility may lag; the event count above is authoritative
    description = await temporal_env.client.get_workflow_handle(registration_workflow_id(app_id)).describe()
    assert description.run_id


async def test_idempotency_key_is_required_and_checked(
    client: httpx.AsyncClient, pool: asyncpg.Pool, api_keys: Keys
) -> None:
    body = await application_body(client, pool, api_keys["applicant"])
    missing = await client.post("/v1/applications", json=body, headers=api_keys.headers("applicant"))
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["field"] == "Idempotency-Key"
    too_long = await client.post("/v1/applications", json=body, headers=idem(api_keys, key="k" * 300))
    assert too_long.status_code == 422
    assert too_long.json()["errors"][0]["field"] == "Idempotency-Key"


async def test_invalid_application_lists_every_failing_field(
    client: httpx.AsyncClient, pool: asyncpg.Pool, api_keys: Keys
) -> None:
    body = await application_body(client, pool, api_keys["applicant"])
    body.update(
        credit_code="91440300MA5F1B2C3A",
        carrier="china_unicorn",
        destination_numbers=["12345"],
        legal_representative={"name": "张伟", "id_number": "110101198001011230", "phone": "13800138000"},
        agent={"name": "李娜", "id_number": AGENT_ID, "phone": "not a phone"},
        contact_address="",
        unknown_field=1,
    )
    response = await client.post("/v1/applications", json=body, headers=idem(api_keys))
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["code"] == "invalid_input"
    fields = {e["field"] for e in problem["errors"]}
    assert {
        "credit_code",
        "carrier",
        "destination_numbers[0]",
        "legal_representative.id_number",
        "agent.phone",
        "contact_address",
        "unknown_field",
    } <= fields
    assert all(e["message"] for e in problem["errors"])


async def test_evaluate_reports_without_submitting(
    client: httpx.AsyncClient, pool: asyncpg.Pool, api_keys: Keys
) -> None:
    body = await application_body(client, pool, api_keys["applicant"], industry="medical")
    response = await client.post(
        "/v1/applications/evaluate", json=body, headers=api_keys.headers("applicant")
    )
    assert response.status_code == 200
    result = response.json()
    assert result["submittable"] is False
    assert [e["code"] for e in result["errors"]] == ["missing_document"]
    assert "industry_licence" in result["required_documents"]

    licence = await upload(client, api_keys["applicant"], "industry_licence")
    body["documents"].append({"document_id": licence["id"]})
    ok = (
        await client.post("/v1/applications/evaluate", json=body, headers=api_keys.headers("applicant"))
    ).json()
    assert ok == {
        "submittable": True,
        "errors": [],
        "errors_omitted": 0,
        "required_documents": ["business_licence", "legal_rep_id", "application_form", "industry_licence"],
    }
    number = await client.get(f"/v1/numbers/{body['requested_number']}", headers=api_keys.headers("operator"))
    assert number.json()["status"] == "available"  # nothing was held


async def test_a_number_held_by_another_application_is_refused(
    client: httpx.AsyncClient, pool: asyncpg.Pool, api_keys: Keys
) -> None:
    number = (await add_fresh_numbers(pool, 1, prefix=PREFIX))[0]
    first = await submit(
        client, api_keys, await application_body(client, pool, api_keys["applicant"], number=number)
    )
    assert first.status_code == 201
    second_body = await application_body(client, pool, api_keys["other_applicant"], number=number)
    evaluated = await client.post(
        "/v1/applications/evaluate", json=second_body, headers=api_keys.headers("other_applicant")
    )
    assert [e["code"] for e in evaluated.json()["errors"]] == ["number_unavailable"]
    second = await submit(client, api_keys, second_body, role="other_applicant")
    assert second.status_code == 422
    assert second.json()["errors"][0] == {
        "field": "requested_number",
        "code": "number_unavailable",
        "message": second.json()["errors"][0]["message"],
    }
    telecom = (await add_fresh_numbers(pool, 1, prefix="4008"))[0]
    wrong_carrier = await application_body(client, pool, api_keys["applicant"], number=telecom)
    response = await submit(client, api_keys, wrong_carrier)
    assert response.json()["errors"][0]["code"] == "carrier_mismatch"


async def test_documents_and_organisation_must_be_the_callers(
    client: httpx.AsyncClient, pool: asyncpg.Pool, api_keys: Keys
) -> None:
    body = await application_body(client, pool, api_keys["applicant"])
    theirs = await upload(client, api_keys["other_applicant"], "business_licence")
    body["documents"][0] = {"document_id": theirs["id"]}
    body["organisation_id"] = api_keys.other_organisation
    response = await submit(client, api_keys, body)
    assert response.status_code == 422
    codes = {(e["field"], e["code"]) for e in response.json()["errors"]}
    assert ("organisation_id", "organisation_mismatch") in codes
    assert ("documents[0].document_id", "document_not_found") in codes

    mine = await upload(client, api_keys["applicant"], "business_licence")
    body = await application_body(client, pool, api_keys["applicant"])
    body["documents"][0] = {**mine["ref"], "sha256": "0" * 64}
    mismatch = await submit(client, api_keys, body)
    assert ("documents[0].sha256", "document_mismatch") in {
        (e["field"], e["code"]) for e in mismatch.json()["errors"]
    }


async def test_applicants_list_only_their_own_newest_first(
    client: httpx.AsyncClient, pool: asyncpg.Pool, api_keys: Keys
) -> None:
    theirs = await submit(
        client, api_keys, await application_body(client, pool, api_keys["other_applicant"]), "other_applicant"
    )
    mine = []
    for _ in range(3):
        r = await submit(client, api_keys, await application_body(client, pool, api_keys["applicant"]))
        mine.append(r.json()["id"])
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (
            await client.get("/v1/applications", params=params, headers=api_keys.headers("applicant"))
        ).json()
        seen += [item["id"] for item in page["items"]]
        assert all(item["organisation_id"] == api_keys.organisation for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen[:3] == list(reversed(mine))
    assert theirs.json()["id"] not in seen
    assert len(seen) == len(set(seen))
    other = await client.get(f"/v1/applications/{theirs.json()['id']}", headers=api_keys.headers("applicant"))
    assert other.status_code == 404
    bad = await client.get(
        "/v1/applications", params={"cursor": "garbage"}, headers=api_keys.headers("applicant")
    )
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "cursor"


async def test_approve_pay_verify_activate(
    client: httpx.AsyncClient, api_keys: Keys, submitted: dict[str, Any]
) -> None:
    app_id = submitted["id"]
    op = api_keys.headers("operator")
    approved = await client.post(
        f"/v1/applications/{app_id}/decision", json={"decision": "approve"}, headers=op
    )
    assert approved.status_code == 200, approved.text
    state = approved.json()
    assert (state["stage"], state["status"]) == ("allocate", "awaiting_prepayment")
    required = state["fees"]["first_prepayment_fen"]
    assert required >= 60000

    pay_key = str(uuid.uuid4())
    part = await client.post(
        f"/v1/applications/{app_id}/payments", json={"amount_fen": 10000}, headers=idem(api_keys, key=pay_key)
    )
    assert part.status_code == 200, part.text
    assert part.json()["accepted"] is True
    assert part.json()["paid_fen"] == 10000
    retried = await client.post(
        f"/v1/applications/{app_id}/payments", json={"amount_fen": 10000}, headers=idem(api_keys, key=pay_key)
    )
    assert retried.json()["accepted"] is False  # counted once
    assert retried.json()["paid_fen"] == 10000
    changed = await client.post(
        f"/v1/applications/{app_id}/payments", json={"amount_fen": 20000}, headers=idem(api_keys, key=pay_key)
    )
    assert changed.status_code == 409
    assert changed.json()["code"] == "idempotency_key_reused"
    bad_amount = await client.post(
        f"/v1/applications/{app_id}/payments", json={"amount_fen": "100"}, headers=idem(api_keys)
    )
    assert bad_amount.status_code == 422

    rest = await client.post(
        f"/v1/applications/{app_id}/payments", json={"amount_fen": required - 10000}, headers=idem(api_keys)
    )
    assert rest.json()["paid_in_full"] is True
    assert rest.json()["registration"]["status"] == "awaiting_verification"

    verified = await client.post(
        f"/v1/applications/{app_id}/verification",
        json={"outcome": "pass", "reason": "identity confirmed"},
        headers=op,
    )
    assert verified.status_code == 200, verified.text
    assert verified.json()["stage"] in ("activate", "active")

    for _ in range(100):
        current = (
            await client.get(f"/v1/applications/{app_id}", headers=api_keys.headers("applicant"))
        ).json()
        if current["stage"] == "active":
            break
        await asyncio.sleep(0.1)
    assert current["status"] == "active"
    assert current["service_state"] == "active"
    assert current["lifecycle"] == "in_service"
    # The nearest deadline once active is the first bill, a billing cycle after
    # activation; the real-name re-confirmation comes a year on.
    activated = datetime.fromisoformat(current["activated_at"])
    assert (current["next_deadline_kind"], datetime.fromisoformat(current["next_deadline"])) == (
        "billing",
        activated + timedelta(days=30),
    )
    assert datetime.fromisoformat(current["realname_due_at"]) == activated + timedelta(days=365)

    timeline = (
        await client.get(f"/v1/applications/{app_id}/timeline", headers=api_keys.headers("applicant"))
    ).json()
    types = [e["event_type"] for e in timeline["entries"]]
    assert types[:5] == [
        "ApplicationSubmitted",
        "ApplicationApproved",
        "PaymentReceived",
        "PaymentReceived",
        "VerificationPassed",
    ]
    assert types[-1] == "NumberActivated"
    approval = timeline["entries"][1]
    assert approval["actor"] == "operator"  # applicants learn the role, not the operator
    staff_timeline = (
        await client.get(f"/v1/applications/{app_id}/timeline", headers=api_keys.headers("viewer"))
    ).json()
    assert staff_timeline["entries"][1]["actor"].startswith("apikey:")

    late = await client.post(
        f"/v1/applications/{app_id}/withdraw", json={}, headers=api_keys.headers("applicant")
    )
    assert late.status_code == 409
    assert late.json()["registration"]["status"] == "active"

    # After activation the service workflow, under the same id, takes payments
    # into the prepaid balance that monthly billing draws on.
    top_up = await client.post(
        f"/v1/applications/{app_id}/payments", json={"amount_fen": 5000}, headers=idem(api_keys)
    )
    assert top_up.status_code == 200, top_up.text
    assert (top_up.json()["accepted"], top_up.json()["balance_fen"]) == (True, required + 5000)
    assert (top_up.json()["required_fen"], top_up.json()["paid_in_full"]) == (0, True)  # no arrears
    assert top_up.json()["registration"]["status"] == "active"
    timeline = (
        await client.get(f"/v1/applications/{app_id}/timeline", headers=api_keys.headers("applicant"))
    ).json()
    last = timeline["entries"][-1]
    assert (last["event_type"], last["service_state"]) == ("ServicePaymentReceived", "active")
    assert [e["version"] for e in timeline["entries"]] == list(range(1, len(timeline["entries"]) + 1))


async def test_request_changes_then_resubmit_with_a_replaced_document(
    client: httpx.AsyncClient, pool: asyncpg.Pool, api_keys: Keys
) -> None:
    body = await application_body(client, pool, api_keys["applicant"])
    created = (await submit(client, api_keys, body)).json()
    app_id = created["id"]

    early = await client.post(
        f"/v1/applications/{app_id}/resubmit", json=body, headers=api_keys.headers("applicant")
    )
    assert early.status_code == 409
    assert early.json()["code"] == "wrong_stage"
    assert early.json()["registration"]["status"] == "in_review"

    asked = await client.post(
        f"/v1/applications/{app_id}/decision",
        json={"decision": "request_changes", "documents": ["business_licence"], "reason": "expired licence"},
        headers=api_keys.headers("operator"),
    )
    assert asked.status_code == 200, asked.text
    assert asked.json()["status"] == "changes_requested"
    assert asked.json()["change_request"]["documents"] == ["business_licence"]

    old_id = body["documents"][0]["document_id"]
    replaced = await client.post(
        f"/v1/documents/{old_id}/replace",
        files={"file": ("new.pdf", PDF + b"% v2\n", "application/pdf")},
        headers=api_keys.headers("applicant"),
    )
    assert replaced.status_code == 201
    assert replaced.json()["replaces"] == old_id

    stale = await client.post(
        f"/v1/applications/{app_id}/resubmit", json=body, headers=api_keys.headers("applicant")
    )
    assert stale.status_code == 422
    assert stale.json()["errors"][0]["code"] == "document_replaced"

    body["documents"][0] = {"document_id": replaced.json()["id"]}
    again = await client.post(
        f"/v1/applications/{app_id}/resubmit", json=body, headers=api_keys.headers("applicant")
    )
    assert again.status_code == 200, again.text
    assert again.json()["status"] == "in_review"
    assert again.json()["change_request"] is None

    docs = (
        await client.get(f"/v1/applications/{app_id}/documents", headers=api_keys.headers("operator"))
    ).json()
    assert replaced.json()["id"] in {d["id"] for d in docs["items"]}


async def test_reject_needs_a_code_and_closes_the_registration(
    client: httpx.AsyncClient, api_keys: Keys, submitted: dict[str, Any]
) -> None:
    app_id = submitted["id"]
    op = api_keys.headers("operator")
    no_code = await client.post(
        f"/v1/applications/{app_id}/decision", json={"decision": "reject"}, headers=op
    )
    assert no_code.status_code == 422
    unknown = await client.post(
        f"/v1/applications/{app_id}/decision", json={"decision": "reject", "reason_code": "nope"}, headers=op
    )
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["field"] == "reason_code"

    rejected = await client.post(
        f"/v1/applications/{app_id}/decision",
        json={"decision": "reject", "reason_code": "documents_invalid", "reason": "illegible scan"},
        headers=op,
    )
    assert rejected.status_code == 200
    assert rejected.json()["rejection"] == {"reason_code": "documents_invalid", "reason": "illegible scan"}
    assert (rejected.json()["stage"], rejected.json()["status"]) == ("closed", "rejected")
    number = await client.get(f"/v1/numbers/{submitted['number']}", headers=op)
    assert number.json()["status"] == "available"

    for action, payload in (
        ("decision", {"decision": "approve"}),
        ("verification", {"outcome": "pass", "reason": "x"}),
    ):
        late = await client.post(f"/v1/applications/{app_id}/{action}", json=payload, headers=op)
        assert late.status_code == 409, action
        assert late.json()["registration"]["status"] == "rejected"


async def test_withdraw_releases_the_number(
    client: httpx.AsyncClient, api_keys: Keys, submitted: dict[str, Any]
) -> None:
    app_id = submitted["id"]
    response = await client.post(
        f"/v1/applications/{app_id}/withdraw",
        json={"reason": "changed our mind"},
        headers=api_keys.headers("applicant"),
    )
    assert response.status_code == 200
    assert response.json()["status"] == "withdrawn"
    number = await client.get(f"/v1/numbers/{submitted['number']}", headers=api_keys.headers("applicant"))
    assert number.json()["status"] == "available"
    again = await client.post(f"/v1/applications/{app_id}/withdraw", headers=api_keys.headers("applicant"))
    assert again.status_code == 409
    assert again.json()["code"] == "wrong_stage"


async def test_two_operators_deciding_at_once_one_wins(
    client: httpx.AsyncClient, pool: asyncpg.Pool, api_keys: Keys, submitted: dict[str, Any]
) -> None:
    app_id = submitted["id"]
    results = await asyncio.gather(
        client.post(
            f"/v1/applications/{app_id}/decision",
            json={"decision": "approve"},
            headers=api_keys.headers("operator"),
        ),
        client.post(
            f"/v1/applications/{app_id}/decision",
            json={"decision": "reject", "reason_code": "other"},
            headers=api_keys.headers("admin"),
        ),
    )
    assert sorted(r.status_code for r in results) == [200, 409]
    loser = next(r for r in results if r.status_code == 409)
    assert loser.json()["code"] == "already_decided"
    async with pool.acquire() as conn:
        decisions = await conn.fetchval(
            """SELECT count(*) FROM domain_event WHERE stream_id = $1
               AND event_type IN ('ApplicationApproved', 'ApplicationRejected')""",
            app_id,
        )
    assert decisions == 1


class ApiDied(BaseException):
    """The API process stopping dead between two statements (not an Exception:
    no handler of the app turns it into an answer)."""


async def test_an_api_that_dies_between_the_start_and_its_insert_leaves_no_orphan(
    client: httpx.AsyncClient, pool: asyncpg.Pool, api_keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Temporal accepted the start, then the API died before writing the
    application row, and the client never retries: the workflow's apply step
    writes the row itself, so the applicant sees the application, documents
    attached, and operators see it in the queue."""
    body = await application_body(client, pool, api_keys["applicant"])
    headers = idem(api_keys)

    def died(*args: Any, **kwargs: Any) -> None:
        raise ApiDied

    monkeypatch.setattr(applications_service, "record_application", died)
    with pytest.raises(ApiDied):
        await client.post("/v1/applications", json=body, headers=headers)
    monkeypatch.undo()

    claimed = await pool.fetchval(
        "SELECT resource_id FROM idempotency_key WHERE key = $1", headers["Idempotency-Key"]
    )
    for _ in range(200):
        seen = await client.get(f"/v1/applications/{claimed}", headers=api_keys.headers("applicant"))
        if seen.status_code == 200 and seen.json()["status"] != "submitted":
            break
        await asyncio.sleep(0.05)
    assert seen.status_code == 200, seen.text
    assert (seen.json()["stage"], seen.json()["status"]) == ("audit", "in_review")
    attached = await client.get(
        f"/v1/applications/{claimed}/documents", headers=api_keys.headers("applicant")
    )
    assert sorted(d["id"] for d in attached.json()["items"]) == sorted(
        d["document_id"] for d in body["documents"]
    )
    queue = await client.get(
        "/v1/registrations?status=in_review&limit=200", headers=api_keys.headers("operator")
    )
    assert claimed in {r["id"] for r in queue.json()["items"]}
    # The form as submitted is kept (encrypted) for staff to reveal a field.
    stored = await pool.fetch("SELECT seq, accepted FROM application_form WHERE application_id = $1", claimed)
    assert [(r["seq"], r["accepted"]) for r in stored] == [(1, True)]

    # A late retry with the same key answers the same application, started once.
    retried = await client.post("/v1/applications", json=body, headers=headers)
    assert (retried.status_code, retried.json()["id"]) == (201, claimed)
    assert retried.headers["idempotent-replayed"] == "true"
    submitted_events = await pool.fetchval(
        "SELECT count(*) FROM domain_event WHERE stream_id = $1 AND event_type = 'ApplicationSubmitted'",
        claimed,
    )
    assert submitted_events == 1

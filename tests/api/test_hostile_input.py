"""Hostile input: no request can stall the service, crash a handler or hide its
meaning; each is refused with a 4xx problem that names the field."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from api.config import ApiSettings
from api.services.events import StreamSlots
from app.settings import Settings
from domain.applicant import MAX_DESTINATION_NUMBERS, MAX_DOCUMENTS
from tests.api.fixtures import PDF, Keys, activate, application_body
from tests.api.test_errors import assert_problem, other_app
from tests.domain.factories import valid_application_dict
from workflows.contracts import ERR_INVALID_REQUEST, Actor, ActorRole, registration_workflow_id
from workflows.service_contracts import UPDATE_REPORT_DETAILS_CHANGE, DetailsChangeReport, DetailsChangeResult


def _form(**overrides: Any) -> dict[str, Any]:
    body = valid_application_dict(carrier="china_unicom", **{"activation_at": None, **overrides})
    body.pop("organisation_id")
    return body


def _idem(keys: Keys, role: str = "applicant") -> dict[str, str]:
    return keys.headers(role, **{"Idempotency-Key": str(uuid.uuid4())})


class HealthProbe:
    """Asks /healthz over and over while something else runs, and keeps the
    slowest answer, or the longest its pause between two asks overran: how long
    the event loop was unable to serve anyone else."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.slowest = 0.0
        self.answers = 0

    @asynccontextmanager
    async def running(self) -> AsyncIterator[HealthProbe]:
        task = asyncio.create_task(self._probe())
        try:
            await asyncio.sleep(0.05)
            yield self
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _probe(self) -> None:
        pause = 0.01
        while True:
            started = time.perf_counter()
            response = await self.client.get("/healthz")
            assert response.status_code == 200
            answered = time.perf_counter()
            self.answers += 1
            await asyncio.sleep(pause)
            overran = time.perf_counter() - answered - pause
            self.slowest = max(self.slowest, answered - started, overran)


async def _while_probing(
    client: httpx.AsyncClient, request: Awaitable[httpx.Response]
) -> tuple[httpx.Response, float]:
    async with HealthProbe(client).running() as probe:
        response = await request
        await asyncio.sleep(0.05)
    assert probe.answers > 1
    return response, probe.slowest


# ---------------------------------------------------------------------------
# Item 7: sizes
# ---------------------------------------------------------------------------


async def test_thousands_of_document_references_do_not_stall_the_service(
    client: httpx.AsyncClient, api_keys: Keys
) -> None:
    """5,000 references in /evaluate (130 KB) held the event loop for 13 s: every
    other request, /healthz included, waited as long."""
    references = [{"document_id": f"doc_{i:026d}"} for i in range(5000)]
    for path, headers in (
        ("/v1/applications/evaluate", api_keys.headers("applicant")),
        ("/v1/applications", _idem(api_keys)),
    ):
        response, stalled = await _while_probing(
            client, client.post(path, json=_form(documents=references), headers=headers)
        )
        assert stalled < 0.5, f"{path}: /healthz waited {stalled:.2f} s"
        problem = assert_problem(response, 422, "invalid_input")
        assert problem["errors"] == [
            {
                "field": "documents",
                "code": "too_many",
                "message": f"Give at most {MAX_DOCUMENTS} documents (got 5000).",
            }
        ]


async def test_every_list_of_an_application_is_capped_naming_the_limit(
    client: httpx.AsyncClient, api_keys: Keys
) -> None:
    """10,000 duplicate destinations produced a 1.3 MB error body."""
    body = _form(destination_numbers=["13800138000"] * 10_000)
    for path, headers in (
        ("/v1/applications/evaluate", api_keys.headers("applicant")),
        ("/v1/applications", _idem(api_keys)),
        (f"/v1/applications/app_{'0' * 26}/resubmit", api_keys.headers("applicant")),
    ):
        response = await client.post(path, json=body, headers=headers)
        problem = assert_problem(response, 422, "invalid_input")
        assert [(e["field"], e["code"]) for e in problem["errors"]] == [("destination_numbers", "too_many")]
        assert str(MAX_DESTINATION_NUMBERS) in problem["errors"][0]["message"]
        assert len(response.content) < 2000


async def test_the_errors_listed_are_capped_and_the_rest_counted(
    client: httpx.AsyncClient, api_keys: Keys
) -> None:
    body = {**_form(), **{f"unknown_{i}": i for i in range(400)}}
    submitted = await client.post("/v1/applications", json=body, headers=_idem(api_keys))
    problem = assert_problem(submitted, 422, "invalid_input")
    assert len(problem["errors"]) == 50
    assert problem["errors_omitted"] >= 350
    assert "first 50" in problem["detail"]
    evaluated = await client.post(
        "/v1/applications/evaluate", json=body, headers=api_keys.headers("applicant")
    )
    assert evaluated.status_code == 200
    assert len(evaluated.json()["errors"]) == 50
    assert evaluated.json()["errors_omitted"] == problem["errors_omitted"]


async def test_lists_in_actions_are_capped(client: httpx.AsyncClient, api_keys: Keys) -> None:
    app_path = f"/v1/applications/app_{'0' * 26}"
    decision = await client.post(
        f"{app_path}/decision",
        json={"decision": "request_changes", "fields": [f"f{i}" for i in range(1000)]},
        headers=api_keys.headers("operator"),
    )
    assert [e["field"] for e in assert_problem(decision, 422)["errors"]] == ["fields"]
    documents = await client.post(
        f"{app_path}/decision",
        json={"decision": "request_changes", "documents": ["business_licence"] * 1000},
        headers=api_keys.headers("operator"),
    )
    assert [e["field"] for e in assert_problem(documents, 422)["errors"]] == ["documents"]


# ---------------------------------------------------------------------------
# Item 9: bodies that are not JSON
# ---------------------------------------------------------------------------


async def test_an_application_not_sent_as_json_is_415_naming_the_content_type(
    client: httpx.AsyncClient, pool: asyncpg.Pool, api_keys: Keys
) -> None:
    """A submission as text/plain, or with no content type, was a 500; evaluate
    answered 200 for it."""
    raw = b'{"company_name": "x"}'
    for path, extra in (
        ("/v1/applications", {"Idempotency-Key": str(uuid.uuid4())}),
        ("/v1/applications/evaluate", {}),
        (f"/v1/applications/app_{'0' * 26}/resubmit", {}),
    ):
        for content_type in ("text/plain", "", "application/x-www-form-urlencoded"):
            response = await client.post(
                path,
                content=raw,
                headers=api_keys.headers("applicant", **extra, **{"Content-Type": content_type}),
            )
            problem = assert_problem(response, 415, "unsupported_media_type")
            assert [e["field"] for e in problem["errors"]] == ["Content-Type"], (path, content_type)
    # A JSON media type with parameters, or a +json one, is JSON.
    body = await application_body(client, pool, api_keys["applicant"])
    for content_type in ("application/json; charset=utf-8", "application/merge-patch+json"):
        response = await client.post(
            "/v1/applications/evaluate",
            content=httpx.Request("POST", "/", json=body).content,
            headers=api_keys.headers("applicant", **{"Content-Type": content_type}),
        )
        assert response.status_code == 200, response.text
        assert response.json()["submittable"] is True


async def test_a_body_that_cannot_be_read_is_422_naming_the_body(
    client: httpx.AsyncClient, api_keys: Keys
) -> None:
    """Bytes that are not UTF-8, or JSON nested too deep for the parser, were an
    undocumented 400 naming no field."""
    nested = b"[" * 5000 + b"]" * 5000
    for path, role in (
        ("/v1/applications/evaluate", "applicant"),
        (f"/v1/applications/app_{'0' * 26}/decision", "operator"),
        ("/v1/api-keys", "admin"),
    ):
        for raw in (b"\xff\xfe{", nested, b"{not json"):
            response = await client.post(
                path, content=raw, headers=api_keys.headers(role, **{"Content-Type": "application/json"})
            )
            problem = assert_problem(response, 422, "invalid_input")
            assert [e["field"] for e in problem["errors"]] == ["body"], (path, raw[:10], problem)


# ---------------------------------------------------------------------------
# Item 8: dates
# ---------------------------------------------------------------------------

BAD_DATETIMES: list[Any] = [
    "0001-01-01T00:00:00+14:00",  # before year 1 in UTC: overflowed the working-day arithmetic
    "0001-01-01T00:00:00+00:00",
    "1999-12-31T23:59:59+08:00",
    "9999-12-31T23:59:59-14:00",
    "2026-11-25",  # no time, no offset
    "2026-11-25T09:00:00",  # no offset
    1_700_000_000,  # a Unix time
    "0.5",
]


NEW_ADDRESS = {"contact_address": "广东省深圳市南山区科技园南区 2 号"}


@pytest.fixture
async def in_service(client: httpx.AsyncClient, api_keys: Keys, submitted: dict[str, Any]) -> dict[str, Any]:
    return await activate(client, api_keys, submitted["id"])


async def test_a_details_change_out_of_the_window_is_422_naming_changed_at(
    client: httpx.AsyncClient, api_keys: Keys, in_service: dict[str, Any]
) -> None:
    """changed_at in year 1 was a 500 (+00:00), or a 503 after 15 s while the
    workflow task failed over and over (+14:00)."""
    path = f"/v1/applications/{in_service['id']}/details-changes"
    for changed_at in BAD_DATETIMES:
        response = await client.post(
            path,
            json={"changed_at": changed_at, "fields": ["contact_address"], "values": NEW_ADDRESS},
            headers=api_keys.headers("applicant"),
        )
        problem = assert_problem(response, 422, "invalid_input")
        assert [e["field"] for e in problem["errors"]] == ["changed_at"], (changed_at, problem)
    recent = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    ok = await client.post(
        path,
        json={"changed_at": recent, "fields": ["contact_address"], "values": NEW_ADDRESS},
        headers=api_keys.headers("applicant"),
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["late"] is False


async def test_the_service_workflow_refuses_a_change_it_cannot_place(
    client: httpx.AsyncClient, api_keys: Keys, in_service: dict[str, Any], temporal_env: WorkflowEnvironment
) -> None:
    """Past the API (another client, an old API version), the workflow itself
    refuses what it cannot use instead of failing its task: a report without its
    reporting deadline (the caller counts it on the stored calendar; the workflow
    counts no working day), or with one before the change."""
    handle = temporal_env.client.get_workflow_handle(registration_workflow_id(in_service["id"]))
    changed_at = datetime.now(UTC) - timedelta(days=1)
    actor = Actor(id="apikey:test", role=ActorRole.APPLICANT)
    for report in (
        DetailsChangeReport(actor=actor, changed_at=changed_at, fields=["contact_address"]),
        DetailsChangeReport(
            actor=actor,
            changed_at=changed_at,
            fields=["contact_address"],
            due_by=changed_at - timedelta(days=1),
        ),
    ):
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await asyncio.wait_for(
                handle.execute_update(UPDATE_REPORT_DETAILS_CHANGE, report, result_type=DetailsChangeResult),
                20,
            )
        assert isinstance(refused.value.cause, ApplicationError)
        assert refused.value.cause.type == ERR_INVALID_REQUEST
        assert "due_by" in refused.value.cause.message
    # And it goes on serving.
    ok = await client.post(
        f"/v1/applications/{in_service['id']}/details-changes",
        json={
            "changed_at": datetime.now(UTC).isoformat(),
            "fields": ["contact_address"],
            "values": NEW_ADDRESS,
        },
        headers=api_keys.headers("applicant"),
    )
    assert ok.status_code == 200, ok.text


async def test_activation_at_must_be_ahead_and_within_the_horizon(
    client: httpx.AsyncClient, pool: asyncpg.Pool, api_keys: Keys, api_settings: ApiSettings
) -> None:
    """A past activation time was silently replaced by now, and year 9999 accepted."""
    now = datetime.now(UTC)
    horizon = api_settings.activation_horizon
    cases: list[tuple[Any, str]] = [
        ((now - timedelta(minutes=5)).isoformat(), "in_past"),
        ("2025-10-09T09:00:00+08:00", "in_past"),
        ((now + horizon + timedelta(days=1)).isoformat(), "too_far_ahead"),
        ("9999-12-31T23:59:59+08:00", "too_far_ahead"),
        ("0001-01-01T00:00:00+14:00", "in_past"),
        (1_900_000_000, "invalid_type"),
    ]
    body = await application_body(client, pool, api_keys["applicant"])
    for activation_at, code in cases:
        body["activation_at"] = activation_at
        submitted = await client.post("/v1/applications", json=body, headers=_idem(api_keys))
        problem = assert_problem(submitted, 422, "invalid_input")
        assert [(e["field"], e["code"]) for e in problem["errors"]] == [("activation_at", code)], (
            activation_at
        )
        evaluated = await client.post(
            "/v1/applications/evaluate", json=body, headers=api_keys.headers("applicant")
        )
        assert evaluated.json()["submittable"] is False
        assert [(e["field"], e["code"]) for e in evaluated.json()["errors"]] == [("activation_at", code)]
    body["activation_at"] = (now + timedelta(days=3)).isoformat()
    evaluated = await client.post(
        "/v1/applications/evaluate", json=body, headers=api_keys.headers("applicant")
    )
    assert evaluated.json() | {"required_documents": None} == {
        "submittable": True,
        "errors": [],
        "errors_omitted": 0,
        "required_documents": None,
    }


async def test_creation_range_filters_out_of_the_window_are_422_naming_the_field(
    client: httpx.AsyncClient, api_keys: Keys
) -> None:
    """created_from / created_to beyond PostgreSQL's range were a 500, and
    created_to=0.5 was read as a Unix time."""
    for path in ("/v1/registrations", "/v1/registrations/stats"):
        for name in ("created_from", "created_to"):
            for value in BAD_DATETIMES:
                response = await client.get(path, params={name: value}, headers=api_keys.headers("viewer"))
                problem = assert_problem(response, 422, "invalid_input")
                assert [e["field"] for e in problem["errors"]] == [name], (path, name, value, problem)
        ok = await client.get(
            path,
            params={"created_from": "2026-01-01T00:00:00+08:00", "created_to": datetime.now(UTC).isoformat()},
            headers=api_keys.headers("viewer"),
        )
        assert ok.status_code == 200, ok.text


# ---------------------------------------------------------------------------
# Item 10: the event stream
# ---------------------------------------------------------------------------


async def test_a_stream_position_beyond_a_bigint_is_422_not_a_dead_stream(
    client: httpx.AsyncClient, api_keys: Keys
) -> None:
    """after= or Last-Event-ID above 2^63-1 answered 200, then the stream died
    (asyncpg could not encode the position)."""
    for params, headers, field in (
        ({"after": str(2**63)}, {}, "after"),
        ({"after": "99999999999999999999"}, {}, "after"),
        ({}, {"Last-Event-ID": str(2**63)}, "Last-Event-ID"),
        ({}, {"Last-Event-ID": "99999999999999999999"}, "Last-Event-ID"),
        ({}, {"Last-Event-ID": "null"}, "Last-Event-ID"),
        ({"types": "false"}, {}, "types"),  # event types are names, e.g. ApplicationApproved
    ):
        response = await client.get(
            "/v1/events", params=params, headers=api_keys.headers("viewer", **headers)
        )
        problem = assert_problem(response, 422, "invalid_input")
        assert [e["field"] for e in problem["errors"]] == [field], (params, headers, problem)


async def test_concurrent_streams_are_capped_per_key(stack_settings: Settings, api_keys: Keys) -> None:
    short = ApiSettings(  # type: ignore[call-arg]
        _env_file=None, sse_max_streams_per_key=2, sse_max_stream_seconds=1.5, sse_poll_seconds=0.05
    )
    async with other_app(stack_settings, short) as api:

        async def stream(role: str) -> httpx.Response:
            # No event of this type: the stream stays open until it times out.
            return await api.get(
                "/v1/events",
                params={"after": str(2**63 - 1), "types": "NumberReleased"},
                headers=api_keys.headers(role),
            )

        first = [asyncio.create_task(stream("viewer")) for _ in range(2)]
        await asyncio.sleep(0.5)
        refused = await stream("viewer")
        problem = assert_problem(refused, 429, "too_many_requests")
        assert "2 event streams" in problem["detail"]
        assert int(refused.headers["retry-after"]) > 0
        other_key = asyncio.create_task(stream("operator"))  # the cap is per key
        assert [r.status_code for r in await asyncio.gather(*first, other_key)] == [200, 200, 200]
        # Closed streams give their slots back.
        again = await asyncio.gather(stream("viewer"), stream("viewer"))
        assert [r.status_code for r in again] == [200, 200]


def test_a_stream_slot_nobody_gave_back_lapses() -> None:
    slots = StreamSlots(per_key=1, lifetime_seconds=0.05)
    taken = slots.take("k")
    assert taken is not None and slots.take("k") is None
    time.sleep(0.06)  # as if the stream's process had lost track of it
    again = slots.take("k")
    assert again is not None
    taken.release()  # a late release of the lapsed slot leaves the new one alone
    assert slots.take("k") is None
    again.release()
    again.release()
    assert slots.held("k") == 0


# ---------------------------------------------------------------------------
# Item 12: text that hides its meaning
# ---------------------------------------------------------------------------

HIDDEN = ["\u202e", "\u202a", "\u2066", "\u2069", "\u200b", "\u200d", "\u200f", "\ufeff", "\u2060"]


async def test_names_and_addresses_with_hidden_characters_are_refused_naming_the_field(
    client: httpx.AsyncClient, pool: asyncpg.Pool, api_keys: Keys
) -> None:
    body = await application_body(client, pool, api_keys["applicant"])
    fields = {
        "company_name": ("company_name",),
        "contact_address": ("contact_address",),
        "legal_representative.name": ("legal_representative", "name"),
    }
    for hidden in HIDDEN:
        tampered = json.loads(json.dumps(body))
        for path in fields.values():
            target = tampered
            for part in path[:-1]:
                target = target[part]
            target[path[-1]] = f"深圳{hidden}示例"
        submitted = await client.post("/v1/applications", json=tampered, headers=_idem(api_keys))
        problem = assert_problem(submitted, 422, "invalid_input")
        assert sorted((e["field"], e["code"]) for e in problem["errors"]) == sorted(
            (f, "hidden_characters") for f in fields
        ), (hidden, problem)
    # Ordinary Chinese, full-width and mixed-script text stays accepted.
    body["company_name"] = "深圳市示例（南山）科技有限公司 Acme-Ltd."
    evaluated = await client.post(
        "/v1/applications/evaluate", json=body, headers=api_keys.headers("applicant")
    )
    assert evaluated.json()["submittable"] is True, evaluated.text


async def test_a_document_whose_file_name_hides_its_meaning_is_refused(
    client: httpx.AsyncClient, api_keys: Keys
) -> None:
    """inv\\u202eFDP.exe was stored, and shown to operators as "invexe.PDF"."""
    for name in ("inv\u202eFDP.exe", "licence\u200b.pdf", "\u2066scan.pdf\u2069"):
        response = await client.post(
            "/v1/documents",
            headers=api_keys.headers("applicant"),
            data={"kind": "business_licence"},
            files={"file": (name, PDF, "application/pdf")},
        )
        problem = assert_problem(response, 422, "invalid_input")
        assert [(e["field"], e["code"]) for e in problem["errors"]] == [("file", "hidden_characters")]
    plain = await client.post(
        "/v1/documents",
        headers=api_keys.headers("applicant"),
        data={"kind": "business_licence"},
        files={"file": ("营业执照 2026.pdf", PDF, "application/pdf")},
    )
    assert plain.status_code == 201, plain.text
    assert plain.json()["filename"] == "营业执照 2026.pdf"


async def test_an_api_key_name_with_hidden_characters_is_refused(
    client: httpx.AsyncClient, api_keys: Keys
) -> None:
    response = await client.post(
        "/v1/api-keys", json={"role": "viewer", "name": "ops\u202e"}, headers=api_keys.headers("admin")
    )
    problem = assert_problem(response, 422, "invalid_input")
    assert [(e["field"], e["code"]) for e in problem["errors"]] == [("name", "hidden_characters")]


async def test_a_reason_with_hidden_characters_is_refused_naming_the_field(
    client: httpx.AsyncClient, api_keys: Keys, submitted: dict[str, Any]
) -> None:
    """A decision's reason "abc\u202eevil" was stored and shown reversed ("abclive")."""
    response = await client.post(
        f"/v1/applications/{submitted['id']}/decision",
        json={"decision": "reject", "reason_code": "other", "reason": "abc\u202eevil\u202c"},
        headers=api_keys.headers("operator"),
    )
    problem = assert_problem(response, 422, "invalid_input")
    assert [(e["field"], e["code"]) for e in problem["errors"]] == [("reason", "hidden_characters")]


# ---------------------------------------------------------------------------
# Item 13: the server does what the document says
# ---------------------------------------------------------------------------


async def test_every_decision_example_is_taken(
    client: httpx.AsyncClient, pool: asyncpg.Pool, api_keys: Keys
) -> None:
    """The DecisionIn examples, merged into one by clients that read schema
    examples, made a rejection without its reason_code."""
    spec = (await client.get("/v1/openapi.json")).json()
    examples = spec["paths"]["/v1/applications/{application_id}/decision"]["post"]["requestBody"]["content"][
        "application/json"
    ]["examples"]
    for name, example in examples.items():
        created = await client.post(
            "/v1/applications",
            json=await application_body(client, pool, api_keys["applicant"]),
            headers=_idem(api_keys),
        )
        assert created.status_code == 201, created.text
        decided = await client.post(
            f"/v1/applications/{created.json()['id']}/decision",
            json=example["value"],
            headers=api_keys.headers("operator"),
        )
        assert decided.status_code == 200, (name, decided.text)


async def test_a_method_a_path_does_not_serve_is_405_listing_all_it_does(
    client: httpx.AsyncClient, api_keys: Keys
) -> None:
    """GET /v1/applications/evaluate was a 422 about an application id; OPTIONS
    /v1/applications answered Allow: POST, where GET is served too."""
    evaluate = await client.get("/v1/applications/evaluate", headers=api_keys.headers("applicant"))
    assert_problem(evaluate, 405, "method_not_allowed")
    assert evaluate.headers["allow"] == "POST"
    for path, methods in (
        ("/v1/applications", {"GET", "POST"}),
        ("/v1/api-keys", {"GET", "POST"}),
        (f"/v1/applications/app_{'0' * 26}", {"GET"}),
        ("/v1/registrations", {"GET"}),
    ):
        response = await client.options(path, headers=api_keys.headers("admin"))
        assert_problem(response, 405, "method_not_allowed")
        assert set(response.headers["allow"].split(", ")) == methods, path
    wrong = await client.put("/v1/api-keys", headers=api_keys.headers("admin"))
    assert set(wrong.headers["allow"].split(", ")) == {"GET", "POST"}


async def test_a_payment_without_an_idempotency_key_is_refused_as_documented(
    client: httpx.AsyncClient, api_keys: Keys
) -> None:
    for key in (None, "", " padded ", "k" * 256, "tab\tin"):
        headers = api_keys.headers("applicant") | ({"Idempotency-Key": key} if key is not None else {})
        response = await client.post(
            f"/v1/applications/app_{'0' * 26}/payments", json={"amount_fen": 100}, headers=headers
        )
        problem = assert_problem(response, 422, "invalid_input")
        assert [e["field"] for e in problem["errors"]] == ["Idempotency-Key"], (key, problem)

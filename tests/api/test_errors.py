"""Errors: problem+json everywhere, 503 with Retry-After when a backing service is
down, and never a 500 (or a stack trace) for bad input."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from api.config import ApiSettings
from api.main import create_app
from api.services.workflow import UpdateRejected
from app.embedded import free_port
from app.settings import Settings
from tests.api.fixtures import Keys, application_body, submit
from workflows.contracts import ERR_ACTIVATING, ERR_WRONG_STAGE

PROBLEM_KEYS = {"type", "title", "status", "detail", "code", "instance"}


@asynccontextmanager
async def other_app(
    settings: Settings, api_settings: ApiSettings | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, api_settings or ApiSettings(_env_file=None))  # type: ignore[call-arg]
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c,
    ):
        yield c


def assert_problem(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body.keys() >= PROBLEM_KEYS
    assert body["status"] == status
    assert body["type"].endswith("/" + body["code"])
    if code:
        assert body["code"] == code
    assert "Traceback" not in response.text
    return body


async def test_postgres_down_is_503_with_retry_after(stack_settings: Settings, api_keys: Keys) -> None:
    dead = f"postgres://postgres@127.0.0.1:{free_port()}/nothing"
    async with other_app(stack_settings.model_copy(update={"database_url": dead})) as c:
        for path in ("/v1/requirements/catalogue", "/v1/registrations"):
            response = await c.get(path, headers=api_keys.headers("viewer"))
            body = assert_problem(response, 503, "service_unavailable")
            assert body["service"] == "postgres"
            assert int(response.headers["retry-after"]) > 0


async def _applications_of(pool: asyncpg.Pool, organisation: str) -> int:
    async with pool.acquire() as conn:
        count: int = await conn.fetchval(
            "SELECT count(*) FROM application WHERE organisation_id = $1", organisation
        )
    return count


async def _wait_checked(app_client: httpx.AsyncClient, check: str = "temporal") -> None:
    """Until the app's readiness monitor has seen ``check`` fail (a missing worker
    counts after a few seconds without one, so as not to refuse while one starts)."""
    for _ in range(100):
        ready = await app_client.get("/readyz")
        if ready.json()["checks"][check] not in ("ok", "unknown"):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(ready.text)


async def test_temporal_down_fails_fast_and_the_retry_later_succeeds_once(
    stack_settings: Settings, client: httpx.AsyncClient, pool: asyncpg.Pool, api_keys: Keys
) -> None:
    dead = f"127.0.0.1:{free_port()}"
    body = await application_body(client, pool, api_keys["applicant"])
    headers = api_keys.headers("applicant", **{"Idempotency-Key": str(uuid.uuid4())})
    async with other_app(stack_settings.model_copy(update={"temporal_address": dead})) as down:
        await _wait_checked(down)
        started = time.perf_counter()
        response = await down.post("/v1/applications", json=body, headers=headers)
        # From the readiness signal, not after the SDK's connection retries (~7 s).
        assert time.perf_counter() - started < 1.0
        problem = assert_problem(response, 503, "service_unavailable")
        assert problem["service"] == "temporal"
        assert response.headers["retry-after"]
        # Reads do not need Temporal. Refused before anything was written.
        assert (
            await pool.fetchval(
                "SELECT count(*) FROM idempotency_key WHERE key = $1", headers["Idempotency-Key"]
            )
            == 0
        )
        listed = await down.get("/v1/applications", headers=api_keys.headers("applicant"))
        assert listed.status_code == 200
        ids_before = {item["id"] for item in listed.json()["items"]}

    # Temporal is back: the client retries with the same key and gets one application.
    retried = await client.post("/v1/applications", json=body, headers=headers)
    assert retried.status_code == 201, retried.text
    assert retried.json()["id"] not in ids_before  # nothing half-made was left behind
    assert retried.json()["status"] == "in_review"
    again = await client.post("/v1/applications", json=body, headers=headers)
    assert again.json()["id"] == retried.json()["id"]
    assert again.headers["idempotent-replayed"] == "true"


async def test_temporal_lost_between_checks_is_503_and_the_retry_finishes_the_start(
    stack_settings: Settings, client: httpx.AsyncClient, pool: asyncpg.Pool, api_keys: Keys
) -> None:
    """Temporal goes away after the last readiness check said it was up: the key
    is claimed, the start fails with a 503, and since the start is the commit
    point of a submission no application is shown meanwhile; the retry with the
    same key starts that same application's workflow, once."""
    dead = f"127.0.0.1:{free_port()}"
    body = await application_body(client, pool, api_keys["applicant"])
    headers = api_keys.headers("applicant", **{"Idempotency-Key": str(uuid.uuid4())})
    app = create_app(
        stack_settings.model_copy(update={"temporal_address": dead}), ApiSettings(_env_file=None)
    )  # type: ignore[call-arg]
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as down,
    ):
        await app.state.workflow_health.stop()
        app.state.workflow_health.temporal_ok = None  # as if its last look had been fine
        response = await down.post("/v1/applications", json=body, headers=headers)
        problem = assert_problem(response, 503, "service_unavailable")
        assert problem["service"] == "temporal"
        claimed = await pool.fetchval(
            "SELECT resource_id FROM idempotency_key WHERE key = $1", headers["Idempotency-Key"]
        )
        unseen = await down.get(f"/v1/applications/{claimed}", headers=api_keys.headers("applicant"))
        assert_problem(unseen, 404)

    retried = await client.post("/v1/applications", json=body, headers=headers)
    assert retried.status_code == 201, retried.text
    assert retried.headers["idempotent-replayed"] == "true"
    assert (retried.json()["id"], retried.json()["status"]) == (claimed, "in_review")
    pending = retried.json()
    async with pool.acquire() as conn:
        assert (
            await conn.fetchval(
                """SELECT count(*) FROM domain_event
                   WHERE stream_id = $1 AND event_type = 'ApplicationSubmitted'""",
                pending["id"],
            )
            == 1
        )


async def test_no_worker_polling_fails_writes_fast_and_writes_nothing(
    stack_settings: Settings,
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    api_keys: Keys,
    submitted: dict[str, Any],
) -> None:
    orphan_queue = stack_settings.model_copy(update={"temporal_task_queue": f"nobody-{uuid.uuid4()}"})
    body = await application_body(client, pool, api_keys["applicant"])
    before = await _applications_of(pool, api_keys.organisation)
    async with other_app(orphan_queue) as c:
        await _wait_checked(c, "workers")
        started = time.perf_counter()
        created = await c.post(
            "/v1/applications",
            json=body,
            headers=api_keys.headers("applicant", **{"Idempotency-Key": f"nw-{uuid.uuid4()}"}),
        )
        decided = await c.post(
            f"/v1/applications/{submitted['id']}/decision",
            json={"decision": "approve"},
            headers=api_keys.headers("operator"),
        )
        # Both at once, not after the Update timeout (15 s) each.
        assert time.perf_counter() - started < 1.0
        for response in (created, decided):
            problem = assert_problem(response, 503, "service_unavailable")
            assert problem["service"] == "workers"
            assert response.headers["retry-after"]
        # Reads still answer, from the read model.
        read = await c.get(f"/v1/applications/{submitted['id']}", headers=api_keys.headers("applicant"))
        assert read.status_code == 200
    assert await _applications_of(pool, api_keys.organisation) == before  # no application row


async def test_malformed_bodies_are_422_not_500(client: httpx.AsyncClient, api_keys: Keys) -> None:
    headers = api_keys.headers("applicant", **{"Content-Type": "application/json"})
    for raw in (b"{not json", b"", b"[1, 2]", b'"text"', b"null", b'{"credit_code": "\\u0000"}'):
        response = await client.post("/v1/applications/evaluate", content=raw, headers=headers)
        assert response.status_code in (200, 422), (raw, response.text)
        assert response.status_code < 500
    bad_json = await client.post("/v1/applications/evaluate", content=b"{not json", headers=headers)
    assert_problem(bad_json, 422, "invalid_input")
    not_object = await client.post(
        "/v1/applications", content=b"[1]", headers={**headers, "Idempotency-Key": "x1"}
    )
    assert_problem(not_object, 422, "invalid_input")
    nul = await client.post(
        "/v1/applications/x/decision", json={"decision": "approve"}, headers=api_keys.headers("operator")
    )
    assert_problem(nul, 404, "not_found")  # not an application id: no such resource
    decision = await client.post(
        f"/v1/applications/app_{'0' * 26}/decision",
        json={"decision": "approve", "reason": "\x00"},
        headers=api_keys.headers("operator"),
    )
    assert_problem(decision, 422)  # the body is checked before the application is looked up


async def test_text_postgresql_cannot_store_is_422_naming_the_field(
    client: httpx.AsyncClient, pool: asyncpg.Pool, api_keys: Keys, submitted_once: dict[str, Any]
) -> None:
    query = await client.get(
        "/v1/registrations", params={"carrier": "china\x00unicom"}, headers=api_keys.headers("viewer")
    )
    assert_problem(query, 422, "invalid_input")
    assert query.json()["errors"][0] == {
        "field": "carrier",
        "code": "invalid_character",
        "message": query.json()["errors"][0]["message"],
    }
    body = await application_body(client, pool, api_keys["applicant"])
    body["company_name"] = "示例\x00公司"
    body["legal_representative"]["name"] = "\ud800"
    for path in ("/v1/applications/evaluate", "/v1/applications"):
        raw = json.dumps(body).encode()  # \ud800 survives only as a JSON escape
        response = await client.post(
            path,
            content=raw,
            headers=api_keys.headers(
                "applicant", **{"Content-Type": "application/json", "Idempotency-Key": str(uuid.uuid4())}
            ),
        )
        errors = response.json()["errors"]
        assert {(e["field"], e["code"]) for e in errors} == {
            ("company_name", "invalid_character"),
            ("legal_representative.name", "invalid_character"),
        }, errors
    decision = await client.post(
        f"/v1/applications/{submitted_once['id']}/decision",
        json={"decision": "request_changes", "fields": ["contact_address"], "reason": "bad\x00"},
        headers=api_keys.headers("operator"),
    )
    assert_problem(decision, 422)
    assert decision.json()["errors"][0]["field"] == "reason"
    # A bad character in a key is echoed in the error: the error must still render.
    echoed = await client.post(
        "/v1/api-keys",
        content=b'{"role": "viewer", "name": "x", "\\ud800": 1}',
        headers=api_keys.headers("admin", **{"Content-Type": "application/json"}),
    )
    assert_problem(echoed, 422)


async def test_unknown_routes_and_methods_are_problems(client: httpx.AsyncClient, api_keys: Keys) -> None:
    assert_problem(await client.get("/v1/nothing-here", headers=api_keys.headers("viewer")), 404, "not_found")
    assert_problem(await client.put("/v1/registrations", headers=api_keys.headers("viewer")), 405)
    assert_problem(await client.get("/nothing"), 404, "not_found")


async def test_oversized_json_is_413(client: httpx.AsyncClient, api_keys: Keys) -> None:
    response = await client.post(
        "/v1/applications/evaluate",
        json={"company_name": "x" * (300 * 1024)},
        headers=api_keys.headers("applicant"),
    )
    assert_problem(response, 413, "payload_too_large")


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=20,
)
FORM_FIELDS = [
    "organisation_id",
    "company_name",
    "credit_code",
    "company_type",
    "industry",
    "carrier",
    "legal_representative",
    "agent",
    "contact_address",
    "destination_numbers",
    "documents",
    "package",
    "requested_number",
    "number_criteria",
    "activation_at",
]
forms = st.dictionaries(st.sampled_from(FORM_FIELDS), json_values, max_size=len(FORM_FIELDS))


@pytest.fixture(scope="module")
async def submitted_once(client: httpx.AsyncClient, pool: asyncpg.Pool, api_keys: Keys) -> dict[str, Any]:
    response = await submit(client, api_keys, await application_body(client, pool, api_keys["applicant"]))
    assert response.status_code == 201
    created: dict[str, Any] = response.json()
    return created


FUZZ = hsettings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture], database=None
)


@FUZZ
@given(body=st.one_of(json_values, forms))
async def test_fuzzed_applications_never_500(client: httpx.AsyncClient, api_keys: Keys, body: Any) -> None:
    # As raw JSON: httpx sends json=None as no body at all.
    raw = json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    evaluated = await client.post(
        "/v1/applications/evaluate", content=raw, headers=api_keys.headers("applicant", **headers)
    )
    assert evaluated.status_code in (200, 422), evaluated.text
    submitted = await client.post(
        "/v1/applications",
        content=raw,
        headers=api_keys.headers("applicant", **headers, **{"Idempotency-Key": str(uuid.uuid4())}),
    )
    assert submitted.status_code in (201, 422), submitted.text
    if submitted.status_code == 422:
        assert_problem(submitted, 422, "invalid_input")


@FUZZ
@given(
    params=st.dictionaries(
        st.sampled_from(
            [
                "stage",
                "status",
                "carrier",
                "organisation_id",
                "overdue",
                "created_from",
                "created_to",
                "limit",
                "cursor",
                "order",
                "starts_with",
                "ends_with",
                "contains",
                "tags",
                "tier",
                "exclude_four",
                "max_monthly_spend_fen",
                "sample",
                "company_type",
                "industry",
                "has_agent",
            ]
        ),
        st.text(max_size=40),
        max_size=6,
    )
)
async def test_fuzzed_queries_never_500(
    client: httpx.AsyncClient, api_keys: Keys, params: dict[str, str]
) -> None:
    for path in (
        "/v1/registrations",
        "/v1/registrations/stats",
        "/v1/numbers",
        "/v1/review-queue",
        "/v1/requirements",
        "/v1/applications",
    ):
        role = "applicant" if path in ("/v1/numbers", "/v1/applications", "/v1/requirements") else "admin"
        response = await client.get(path, params=params, headers=api_keys.headers(role))
        assert response.status_code in (200, 422), (path, params, response.text)


@FUZZ
@given(
    body=st.one_of(
        json_values,
        st.dictionaries(
            st.sampled_from(
                ["decision", "reason_code", "reason", "fields", "documents", "outcome", "amount_fen"]
            ),
            json_values,
        ),
    )
)
async def test_fuzzed_actions_never_500(
    client: httpx.AsyncClient, api_keys: Keys, submitted_once: dict[str, Any], body: Any
) -> None:
    app_id = submitted_once["id"]
    for path, role in (
        ("decision", "operator"),
        ("verification", "operator"),
        ("payments", "applicant"),
        ("withdraw", "applicant"),
        ("resubmit", "applicant"),
    ):
        response = await client.post(
            f"/v1/applications/{app_id}/{path}",
            content=json.dumps(body).encode(),
            headers=api_keys.headers(
                role, **{"Idempotency-Key": str(uuid.uuid4()), "Content-Type": "application/json"}
            ),
        )
        assert response.status_code in (200, 409, 422), (path, body, response.text)


def test_an_update_the_workflow_refuses_for_its_stage_is_a_409_wrong_stage() -> None:
    current = {"stage": "active", "status": "active"}
    wrong_stage = UpdateRejected(ERR_WRONG_STAGE, "not in service", None).to_api_error(current)
    assert (wrong_stage.status, wrong_stage.code) == (409, "wrong_stage")
    assert wrong_stage.extra == {"registration": current}


def test_a_service_update_while_the_number_is_being_activated_is_a_503_to_retry() -> None:
    current = {"stage": "activate", "status": "provisioning"}
    error = UpdateRejected(ERR_ACTIVATING, "being activated", None).to_api_error(current)
    assert (error.status, error.headers) == (503, {"Retry-After": "1"})
    assert error.extra == {"service": "temporal", "registration": current}

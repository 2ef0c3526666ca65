"""Every role against every route: allowed roles get through, the others get 403,
no key gets 401, and an applicant reaching for another organisation's
application or document gets 404."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
import pytest

from api.auth import Role
from api.main import api_routes
from app.settings import Settings
from tests.api.fixtures import PDF, PREFIX, Keys, application_body, make_key, submit, upload
from tests.factories_inventory import add_fresh_numbers

ALL = ("applicant", "operator", "admin", "viewer")
OWNERS = ("applicant", "admin")  # of webhook endpoints
STAFF = ("operator", "admin")
READERS = ("operator", "admin", "viewer")
PRINCIPALS = (*ALL, "other_applicant", "nobody")


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    allowed: tuple[str, ...]
    ok: tuple[int, ...]
    # Built per call: some calls change state (withdraw, decide), so each gets its own.
    needs: tuple[str, ...] = ()
    request: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.method} {self.path}"


ROUTES = [
    Route(
        "GET",
        "/v1/requirements",
        ALL,
        (200,),
        request={"params": {"carrier": "china_unicom", "company_type": "enterprise", "industry": "general"}},
    ),
    Route("GET", "/v1/requirements/catalogue", ALL, (200,)),
    Route("GET", "/v1/numbers", ALL, (200,), request={"params": {"limit": 2}}),
    Route("GET", "/v1/numbers/{number}", ALL, (200,), needs=("number",)),
    Route(
        "POST",
        "/v1/documents",
        ("applicant",),
        (201,),
        request={"data": {"kind": "business_licence"}, "files": {"file": ("a.pdf", PDF, "application/pdf")}},
    ),
    Route(
        "POST",
        "/v1/documents/{document_id}/replace",
        ("applicant",),
        (201,),
        needs=("document",),
        request={"files": {"file": ("a.pdf", PDF, "application/pdf")}},
    ),
    Route("GET", "/v1/documents/{document_id}", ("applicant", *STAFF), (200,), needs=("document",)),
    Route("GET", "/v1/documents/{document_id}/content", ("applicant", *STAFF), (200,), needs=("document",)),
    Route("POST", "/v1/applications/evaluate", ("applicant",), (200,), needs=("body",)),
    Route("POST", "/v1/applications", ("applicant",), (201,), needs=("body", "idempotency")),
    Route("GET", "/v1/applications", ("applicant",), (200,)),
    Route(
        "GET", "/v1/applications/{application_id}", ("applicant", *READERS), (200,), needs=("application",)
    ),
    Route(
        "GET",
        "/v1/applications/{application_id}/timeline",
        ("applicant", *READERS),
        (200,),
        needs=("application",),
    ),
    Route(
        "GET",
        "/v1/applications/{application_id}/documents",
        ("applicant", *STAFF),
        (200,),
        needs=("application",),
    ),
    Route(
        "POST",
        "/v1/applications/{application_id}/resubmit",
        ("applicant",),
        (409,),
        needs=("application", "body"),
    ),
    # Its pre-check: a fresh application has no request for changes open, so 409.
    Route(
        "POST",
        "/v1/applications/{application_id}/resubmission/evaluate",
        ("applicant",),
        (409,),
        needs=("application", "body"),
    ),
    Route(
        "POST",
        "/v1/applications/{application_id}/payments",
        ("applicant",),
        (409,),
        needs=("application", "idempotency"),
        request={"json": {"amount_fen": 60000}},
    ),
    Route(
        "POST",
        "/v1/applications/{application_id}/withdraw",
        ("applicant",),
        (200,),
        needs=("application",),
        request={"json": {"reason": "matrix"}},
    ),
    Route(
        "POST",
        "/v1/applications/{application_id}/decision",
        STAFF,
        (200,),
        needs=("application",),
        request={"json": {"decision": "approve"}},
    ),
    Route(
        "POST",
        "/v1/applications/{application_id}/verification",
        STAFF,
        (409,),
        needs=("application",),
        request={"json": {"outcome": "pass", "reason": "matrix"}},
    ),
    # The number in service: a fresh application is not active yet, so an allowed
    # caller gets 409 (the service workflow's Updates do not exist before ACTIVE).
    Route(
        "POST",
        "/v1/applications/{application_id}/suspension",
        STAFF,
        (409,),
        needs=("application",),
        request={"json": {"reason": "matrix"}},
    ),
    Route(
        "POST",
        "/v1/applications/{application_id}/resumption",
        STAFF,
        (409,),
        needs=("application",),
        request={"json": {"reason": "matrix"}},
    ),
    Route(
        "POST",
        "/v1/applications/{application_id}/realname-confirmation",
        STAFF,
        (409,),
        needs=("application",),
        request={"json": {"reason": "matrix"}},
    ),
    Route(
        "POST",
        "/v1/applications/{application_id}/termination",
        ("applicant", *STAFF),
        (409,),
        needs=("application",),
        request={"json": {"reason": "matrix"}},
    ),
    Route(
        "POST",
        "/v1/applications/{application_id}/details-changes",
        ("applicant", *STAFF),
        (409,),
        needs=("application",),
        request={
            "json": {
                "changed_at": "2026-01-05T09:00:00+08:00",
                "fields": ["contact_address"],
                "values": {"contact_address": "广东省深圳市南山区科技园南区 2 号"},
            }
        },
    ),
    Route("GET", "/v1/review-queue", STAFF, (200,), request={"params": {"limit": 2}}),
    Route("GET", "/v1/registrations", READERS, (200,), request={"params": {"limit": 2}}),
    Route("GET", "/v1/registrations/stats", READERS, (200,)),
    Route("GET", "/v1/events", READERS, (200,), needs=("event",), request={"params": {"limit": 1}}),
    Route("POST", "/v1/api-keys", ("admin",), (201,), request={"json": {"role": "viewer", "name": "matrix"}}),
    Route("GET", "/v1/api-keys", ("admin",), (200,)),
    Route("DELETE", "/v1/api-keys/{key_id}", ("admin",), (200,), needs=("key",)),
    Route("GET", "/v1/webhook-endpoints/event-types", ALL, (200,)),
    Route("POST", "/v1/webhook-endpoints", OWNERS, (201,), needs=("webhook_body",)),
    Route("GET", "/v1/webhook-endpoints", OWNERS, (200,)),
    Route("GET", "/v1/webhook-endpoints/{endpoint_id}", OWNERS, (200,), needs=("endpoint",)),
    Route(
        "PATCH",
        "/v1/webhook-endpoints/{endpoint_id}",
        OWNERS,
        (200,),
        needs=("endpoint",),
        request={"json": {"description": "matrix"}},
    ),
    Route("DELETE", "/v1/webhook-endpoints/{endpoint_id}", OWNERS, (200,), needs=("endpoint",)),
    Route("POST", "/v1/webhook-endpoints/{endpoint_id}/rotate-secret", OWNERS, (200,), needs=("endpoint",)),
    Route("GET", "/v1/webhook-endpoints/{endpoint_id}/deliveries", OWNERS, (200,), needs=("endpoint",)),
    Route(
        "GET",
        "/v1/webhook-endpoints/{endpoint_id}/deliveries/{delivery_id}",
        OWNERS,
        (200,),
        needs=("endpoint", "delivery"),
    ),
    # The delivery is still pending (nobody sends it here): an allowed caller gets 409.
    Route(
        "POST",
        "/v1/webhook-endpoints/{endpoint_id}/deliveries/{delivery_id}/redeliver",
        OWNERS,
        (409,),
        needs=("endpoint", "delivery"),
    ),
    Route(
        "POST",
        "/v1/webhook-endpoints/{endpoint_id}/replay",
        OWNERS,
        (200,),
        needs=("endpoint",),
        request={"params": {"since": "2026-01-01T00:00:00Z"}},
    ),
    Route("POST", "/v1/codec/encode", STAFF, (200,), request={"json": {"payloads": []}}),
    Route("POST", "/v1/codec/decode", STAFF, (200,), request={"json": {"payloads": []}}),
]

# Routes an applicant may call on an application, document or webhook endpoint:
# another organisation's must look exactly like one that does not exist.
OWNED = [
    r for r in ROUTES if "applicant" in r.allowed and {"application", "document", "endpoint"} & set(r.needs)
]


def test_the_matrix_covers_every_route() -> None:
    served = {
        (method, route.path_format)  # {application_id:application_id} reads {application_id}
        for route in api_routes()
        if route.path_format.startswith("/v1/")
        for method in route.methods or ()
    }
    assert served == {(r.method, r.path) for r in ROUTES}


async def test_openapi_roles_match_the_matrix(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/v1/openapi.json")).json()["paths"]
    for route in ROUTES:
        operation = paths[route.path][route.method.lower()]
        assert sorted(operation["x-roles"]) == sorted(route.allowed), route.id


@pytest.fixture
def build(
    client: httpx.AsyncClient, pool: asyncpg.Pool, api_keys: Keys, settings: Settings
) -> Callable[[Route, str], Awaitable[tuple[str, dict[str, Any]]]]:
    async def make(route: Route, principal: str) -> tuple[str, dict[str, Any]]:
        values: dict[str, str] = {}
        request = {k: (dict(v) if isinstance(v, dict) else v) for k, v in route.request.items()}
        headers: dict[str, str] = {}
        if "application" in route.needs:
            body = await application_body(client, pool, api_keys["applicant"])
            created = await submit(client, api_keys, body)
            assert created.status_code == 201, created.text
            values["application_id"] = created.json()["id"]
        if "document" in route.needs:
            values["document_id"] = (await upload(client, api_keys["applicant"], "business_licence"))["id"]
        if "number" in route.needs:
            values["number"] = (await add_fresh_numbers(pool, 1, prefix=PREFIX))[0]
        if "key" in route.needs:
            token = await make_key(pool, settings, Role.VIEWER)
            values["key_id"] = token.split("_")[1]
        if "body" in route.needs:
            # Callers who may not submit still need a well-formed body, so their
            # answer is about their role and nothing else.
            owner = principal if principal in ("applicant", "other_applicant") else "applicant"
            request["json"] = await application_body(client, pool, api_keys[owner])
        if "idempotency" in route.needs:
            headers["Idempotency-Key"] = str(uuid.uuid4())
        if "webhook_body" in route.needs:
            request["json"] = {"url": "http://127.0.0.1:9/hook", "event_types": ["deadline.approaching"]}
            if principal == "admin":
                request["json"]["organisation_id"] = api_keys.organisation
        if "endpoint" in route.needs:
            created = await client.post(
                "/v1/webhook-endpoints",
                json={"url": "http://127.0.0.1:9/hook", "event_types": ["deadline.approaching"]},
                headers=api_keys.headers("applicant"),
            )
            assert created.status_code == 201, created.text
            values["endpoint_id"] = created.json()["id"]
        if "delivery" in route.needs:
            # A deadline notice of the organisation queues a delivery to the endpoint.
            async with pool.acquire() as conn:
                notice = await conn.fetchval(
                    """INSERT INTO deadline_notice (application_id, organisation_id, deadline_at,
                           kind, stage, status)
                       VALUES ($1, $2, now() + interval '1 day', 'prepayment', 'allocate',
                               'awaiting_prepayment')
                       RETURNING id""",
                    f"app_matrix{uuid.uuid4().hex[:16]}",
                    api_keys.organisation,
                )
                delivery = await conn.fetchval(
                    "SELECT id FROM webhook_delivery WHERE notice_id = $1 AND endpoint_id = $2",
                    notice,
                    values["endpoint_id"],
                )
            values["delivery_id"] = f"msg_{delivery.hex}"
        if "event" in route.needs:
            async with pool.acquire() as conn:
                last = await conn.fetchval("SELECT coalesce(max(position), 0) FROM domain_event")
            request.setdefault("params", {})["after"] = max(last - 1, 0)
        if principal != "nobody":
            headers["Authorization"] = f"Bearer {api_keys[principal]}"
        request["headers"] = headers
        return route.path.format(**values), request

    return make


@pytest.mark.parametrize("principal", PRINCIPALS)
@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.id)
async def test_role_against_route(
    client: httpx.AsyncClient, build: Callable[..., Any], route: Route, principal: str
) -> None:
    path, request = await build(route, principal)
    response = await client.request(route.method, path, **request)
    role = "applicant" if principal == "other_applicant" else principal
    if principal == "nobody":
        assert response.status_code == 401, response.text
        assert response.headers["www-authenticate"].startswith("Bearer")
    elif role not in route.allowed:
        assert response.status_code == 403, response.text
        assert response.json()["code"] == "forbidden"
    elif principal == "other_applicant" and route in OWNED:
        assert response.status_code == 404, response.text
    else:
        assert response.status_code in route.ok, response.text
    if response.status_code >= 400:
        assert response.headers["content-type"] == "application/problem+json"


async def test_codec_is_open_in_development(pg_url: str, settings: Settings) -> None:
    from asgi_lifespan import LifespanManager

    from api.main import create_app

    app = create_app(settings.model_copy(update={"environment": "development"}))
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c,
    ):
        payload = {
            "payloads": [
                {
                    "metadata": {"encoding": base64.b64encode(b"json/plain").decode()},
                    "data": base64.b64encode(b'"x"').decode(),
                }
            ]
        }
        encoded = await c.post("/v1/codec/encode", json=payload)
        assert encoded.status_code == 200, encoded.text
        decoded = await c.post("/v1/codec/decode", json=encoded.json())
    assert decoded.json() == payload

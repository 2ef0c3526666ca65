"""Hostile input: no request can stall the service, crash a handler or hide its
meaning; each is refused with a 4xx problem that names the field."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import httpx

from domain.applicant import MAX_DESTINATION_NUMBERS, MAX_DOCUMENTS
from tests.api.fixtures import Keys, application_body
from tests.api.test_errors import assert_problem
from tests.domain.factories import valid_application_dict


def _form(**overrides: Any) -> dict[str, Any]:
    body = valid_application_dict(carrier="china_unicom", **overrides)
    body.pop("organisation_id")
    return body


def _idem(keys: Keys, role: str = "applicant") -> dict[str, str]:
    return keys.headers(role, **{"Idempotency-Key": str(uuid.uuid4())})


class HealthProbe:
    """Asks /healthz over and over while something else runs, and keeps the
    slowest answer: how long the event loop was unable to serve anyone else."""

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
        while True:
            started = time.perf_counter()
            response = await self.client.get("/healthz")
            assert response.status_code == 200
            self.slowest = max(self.slowest, time.perf_counter() - started)
            self.answers += 1
            await asyncio.sleep(0.01)


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

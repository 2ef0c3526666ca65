"""Document uploads: types, size, content checks, encryption at rest, replacement."""

from __future__ import annotations

import hashlib

import asyncpg
import httpx
import pytest

from tests.api.fixtures import JPEG, PDF, PNG, Keys, upload


async def test_upload_returns_the_ref_to_use(client: httpx.AsyncClient, api_keys: Keys) -> None:
    doc = await upload(client, api_keys["applicant"], "business_licence")
    assert doc["sha256"] == hashlib.sha256(PDF).hexdigest()
    assert doc["size_bytes"] == len(PDF)
    assert doc["ref"] == {
        "kind": "business_licence",
        "document_id": doc["id"],
        "content_type": "application/pdf",
        "sha256": doc["sha256"],
    }
    for content, content_type in ((PNG, "image/png"), (JPEG, "image/jpeg")):
        other = await upload(client, api_keys["applicant"], "legal_rep_id", content, content_type)
        assert other["content_type"] == content_type


async def test_content_is_encrypted_at_rest_and_served_back(
    client: httpx.AsyncClient, api_keys: Keys, pool: asyncpg.Pool
) -> None:
    doc = await upload(client, api_keys["applicant"], "legal_rep_id")
    async with pool.acquire() as conn:
        stored = bytes(await conn.fetchval("SELECT content FROM document WHERE id = $1", doc["id"]))
    assert PDF not in stored
    for role in ("applicant", "operator", "admin"):
        response = await client.get(f"/v1/documents/{doc['id']}/content", headers=api_keys.headers(role))
        assert response.status_code == 200, role
        assert response.content == PDF
        assert response.headers["content-type"] == "application/pdf"
        assert response.headers["x-content-type-options"] == "nosniff"
    assert (
        await client.get(f"/v1/documents/{doc['id']}/content", headers=api_keys.headers("other_applicant"))
    ).status_code == 404


@pytest.mark.parametrize(
    ("content", "content_type", "status", "code"),
    [
        (b"MZ\x90\x00 executable", "application/x-msdownload", 415, "unsupported_media_type"),
        (b"<html>hello</html>", "text/html", 415, "unsupported_media_type"),
        (b"MZ\x90\x00 executable", "application/pdf", 415, "unsupported_media_type"),  # lies about its type
        (PNG, "application/pdf", 415, "unsupported_media_type"),
        (b"", "application/pdf", 422, "invalid_input"),
    ],
    ids=["exe", "html", "exe-as-pdf", "png-as-pdf", "empty"],
)
async def test_only_expected_types_are_accepted(
    client: httpx.AsyncClient, api_keys: Keys, content: bytes, content_type: str, status: int, code: str
) -> None:
    response = await client.post(
        "/v1/documents",
        data={"kind": "business_licence"},
        files={"file": ("f", content, content_type)},
        headers=api_keys.headers("applicant"),
    )
    assert response.status_code == status, response.text
    assert response.json()["code"] == code
    assert response.headers["content-type"] == "application/problem+json"


async def test_size_limit(client: httpx.AsyncClient, api_keys: Keys) -> None:
    # The test app allows 64 KiB files.
    just_right = PDF + b"0" * (64 * 1024 - len(PDF))
    ok = await client.post(
        "/v1/documents",
        data={"kind": "business_licence"},
        files={"file": ("f.pdf", just_right, "application/pdf")},
        headers=api_keys.headers("applicant"),
    )
    assert ok.status_code == 201, ok.text
    too_big = await client.post(
        "/v1/documents",
        data={"kind": "business_licence"},
        files={"file": ("f.pdf", just_right + b"0", "application/pdf")},
        headers=api_keys.headers("applicant"),
    )
    assert too_big.status_code == 413
    assert too_big.json()["code"] == "payload_too_large"
    # Far over the limit: refused from Content-Length, before the body is read.
    huge = await client.post(
        "/v1/documents",
        data={"kind": "business_licence"},
        files={"file": ("f.pdf", PDF + b"0" * (1024 * 1024), "application/pdf")},
        headers=api_keys.headers("applicant"),
    )
    assert huge.status_code == 413


async def test_streamed_body_without_length_is_limited(client: httpx.AsyncClient, api_keys: Keys) -> None:
    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(400):
            yield b"x" * 1024

    response = await client.post(
        "/v1/applications/evaluate",
        content=chunks(),
        headers={**api_keys.headers("applicant"), "Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"


async def test_unknown_kind_and_missing_file_are_422(client: httpx.AsyncClient, api_keys: Keys) -> None:
    unknown = await client.post(
        "/v1/documents",
        data={"kind": "selfie"},
        files={"file": ("f.pdf", PDF, "application/pdf")},
        headers=api_keys.headers("applicant"),
    )
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["field"] == "kind"
    missing = await client.post(
        "/v1/documents", data={"kind": "business_licence"}, headers=api_keys.headers("applicant")
    )
    assert missing.status_code == 422
    assert {e["field"] for e in missing.json()["errors"]} == {"file"}


async def test_replace_makes_a_new_document_once(client: httpx.AsyncClient, api_keys: Keys) -> None:
    old = await upload(client, api_keys["applicant"], "application_form")
    new = await client.post(
        f"/v1/documents/{old['id']}/replace",
        files={"file": ("v2.png", PNG, "image/png")},
        headers=api_keys.headers("applicant"),
    )
    assert new.status_code == 201, new.text
    assert new.headers["location"] == f"/v1/documents/{new.json()['id']}"
    assert (new.json()["kind"], new.json()["replaces"]) == ("application_form", old["id"])
    old_now = (await client.get(f"/v1/documents/{old['id']}", headers=api_keys.headers("applicant"))).json()
    assert old_now["replaced_by"] == new.json()["id"]
    assert old_now["sha256"] == old["sha256"]  # documents never change

    twice = await client.post(
        f"/v1/documents/{old['id']}/replace",
        files={"file": ("v3.pdf", PDF, "application/pdf")},
        headers=api_keys.headers("applicant"),
    )
    assert twice.status_code == 409
    assert twice.json()["code"] == "document_replaced"
    assert twice.json()["replaced_by"] == new.json()["id"]

    not_mine = await client.post(
        f"/v1/documents/{old['id']}/replace",
        files={"file": ("v3.pdf", PDF, "application/pdf")},
        headers=api_keys.headers("other_applicant"),
    )
    assert not_mine.status_code == 404

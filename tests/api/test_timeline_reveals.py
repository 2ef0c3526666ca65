"""Reveals of personal data in the timeline: staff see each one, placed by time
and apart from the registration's versions; the applicant sees none of them."""

from __future__ import annotations

import json
from typing import Any

import asyncpg
import httpx

from api.auth import Principal
from api.permissions import Role
from api.services import personal_data
from app.settings import Settings
from tests.api.fixtures import Keys

REASON = "internal: the licence scan and the form disagree"


async def test_reveals_are_shown_to_staff_only_and_take_no_registration_version(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    settings: Settings,
    api_keys: Keys,
    submitted: dict[str, Any],
) -> None:
    app_id = submitted["id"]
    operator = Principal("stf_timeline_test", Role.OPERATOR, None, kind="staff")
    async with pool.acquire() as conn:
        for field in ("legal_representative.phone", "legal_representative.id_number"):
            await personal_data.reveal(
                conn, personal_data.form_cipher(settings), operator, app_id, field, REASON
            )

    async def timeline(role: str) -> list[dict[str, Any]]:
        response = await client.get(f"/v1/applications/{app_id}/timeline", headers=api_keys.headers(role))
        assert response.status_code == 200, response.text
        entries: list[dict[str, Any]] = response.json()["entries"]
        return entries

    own = await timeline("applicant")
    assert "PersonalDataRevealed" not in json.dumps(own) and REASON not in json.dumps(own)
    assert [e["version"] for e in own] == list(range(1, len(own) + 1))
    assert {e["source"] for e in own} == {"registration"}

    for role in ("operator", "admin", "viewer"):
        entries = await timeline(role)
        reveals = [e for e in entries if e["source"] == "access_log"]
        assert [(e["event_type"], e["version"]) for e in reveals] == [("PersonalDataRevealed", None)] * 2
        assert all(REASON in e["reason"] for e in reveals)
        versions = [e["version"] for e in entries if e["source"] == "registration"]
        assert versions == [e["version"] for e in own]  # unique, in order, the stream's own
        times = [e["occurred_at"] for e in entries]
        assert times == sorted(times)  # reveals placed by time

    spec = (await client.get("/v1/openapi.json")).json()
    entry = spec["components"]["schemas"]["TimelineEntry"]["properties"]
    assert {"type": "null"} in entry["version"]["anyOf"]
    assert entry["source"]["enum"] == ["registration", "access_log"]

"""What a webhook message says: the event as the API's timeline shows it to the
applicant (``registrations.timeline_entries``, masked the same way: operators
named by role only), with the application id, the event's id, type, version
and position, and for rejections, change requests and refusals their coded
reason and fields.

Standard Webhooks shape: ``{"type", "timestamp", "data"}``, ``timestamp`` being
when the event occurred. Rendered once per delivery and stored with it, so that
every attempt sends the same bytes. Every timestamp in a message is written
as the API writes them (RFC 3339, UTC, ``Z``), the event's facts included.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from activities.repositories import events as event_store
from activities.repositories import webhooks as repo
from api.schemas.common import utc_in_json, utc_text
from api.services.registrations import timeline_entries

# Facts of an event's payload that a message carries in ``details``: amounts,
# dates, stages and the number; never the application's summary (personal
# data, masked or not, stays in the API's staff views).
_DETAILS = (
    "number",
    "tier",
    "min_monthly_spend_fen",
    "first_prepayment_fen",
    "pay_by",
    "payment_id",
    "amount_fen",
    "paid_fen",
    "required_fen",
    "paid_in_full",
    "verify_by",
    "activation_at",
    "activated_at",
    "realname_due_at",
    "carrier_reference",
    "balance_fen",
    "charge_fen",
    "state_before",
    "state_after",
    "carrier_action",
    "quarantine_until",
    "cycle_number",
    "released",
    "due_at",
    "next_due_at",
    "due_by",
    "changed_at",
    "late",
    "cleared_stage",
    "previous_stage",
    "review_due",
    "from_stage",
    "from_status",
    "refund_owed_fen",
    "previous_number",
    # Working-day deadlines: how they were counted, and what a recompute moved.
    "working_days",
    "deadline_provisional",
    "provisional_years",
    "calendar_version",
    "deadline_kind",
    "old_at",
    "new_at",
    "counted_at",
    "due_at",
    "due_provisional",
)


def message(event_type: str, timestamp: datetime, data: dict[str, Any]) -> dict[str, Any]:
    return {"type": event_type, "timestamp": utc_text(timestamp), "data": data}


async def event_data(conn: asyncpg.Connection, positions: list[int]) -> dict[int, dict[str, Any]]:
    """The ``data`` of the messages for the events at ``positions``, by position."""
    rows = await repo.events_at(conn, positions)
    by_stream: dict[str, list[asyncpg.Record]] = {}
    for row in rows:
        by_stream.setdefault(row["stream_id"], []).append(row)
    out: dict[int, dict[str, Any]] = {}
    for stream_id, stream_rows in by_stream.items():
        events, service_rows = await event_store.load_stream_and_service_events(conn, stream_id)
        entries = {e.version: e for e in timeline_entries(events, service_rows, staff=False)}
        for row in stream_rows:
            entry = entries.get(row["version"])
            # Every message is of the registration's stream: its source goes without saying.
            shown = entry.model_dump(mode="json", exclude={"source"}) if entry is not None else {}
            out[row["position"]] = _event_data(row, shown)
    return out


def _event_data(row: asyncpg.Record, shown: dict[str, Any]) -> dict[str, Any]:
    payload: dict[str, Any] = row["payload"] or {}
    data: dict[str, Any] = {
        "application_id": row["stream_id"],
        "event_id": row["event_id"],
        "position": row["position"],
        **shown,
        # The stream's own words win over the entry's (the same values, unless
        # the timeline cannot place an event type it does not know yet).
        "event_type": row["event_type"],
        "version": row["version"],
        "occurred_at": row["occurred_at"],
    }
    if "reason_code" in payload:
        data["reason_code"] = payload["reason_code"]
    for key in ("fields", "documents", "resubmit_by"):
        if key in payload:
            data[key] = payload[key]
    if "problems" in payload:
        data["problems"] = payload["problems"]
    details = {k: payload[k] for k in _DETAILS if k in payload}
    if details:
        data["details"] = details
    json_ready: dict[str, Any] = utc_in_json(data)
    return json_ready


async def notice_data(conn: asyncpg.Connection, notice_ids: list[int]) -> dict[int, dict[str, Any]]:
    return {
        row["id"]: {
            "application_id": row["application_id"],
            "kind": row["kind"],
            "deadline_at": utc_text(row["deadline_at"]),
            "stage": row["stage"],
            "status": row["status"],
            "noticed_at": utc_text(row["noticed_at"]),
        }
        for row in await repo.notices(conn, notice_ids)
    }

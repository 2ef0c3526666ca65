"""Appending to the audit streams no workflow owns: a staff account's
(``staff:<id>``: sign-ins, failures, lockouts) and an application's access log
(``access:<application id>``: reveals of personal data).

The insert takes the stream's next version as max + 1, so two requests
appending to one stream at once (two sign-ins, two reveals) can take the same
version: the second insert then waits for the first and fails on the stream's
primary key. Nothing else of theirs conflicts, so the loser takes the next
number: each attempt runs in a savepoint, which a failed insert rolls back
alone, and the retry (a new statement, a new snapshot) sees the winner's row.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from activities.repositories.service import append_event

_STREAM_VERSION = "domain_event_pkey"  # (stream_id, version)
MAX_ATTEMPTS = 50


async def append(
    conn: asyncpg.Connection,
    *,
    stream_id: str,
    event_id: str,
    event_type: str,
    actor: str,
    actor_role: str,
    reason: str | None,
    correlation_id: str,
    payload: dict[str, Any],
    occurred_at: datetime,
) -> int | None:
    """The version the event took (None: ``event_id`` was stored already)."""
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            async with conn.transaction():
                return await append_event(
                    conn,
                    stream_id=stream_id,
                    event_id=event_id,
                    event_type=event_type,
                    actor=actor,
                    actor_role=actor_role,
                    reason=reason,
                    correlation_id=correlation_id,
                    payload=payload,
                    occurred_at=occurred_at,
                )
        except asyncpg.UniqueViolationError as exc:
            if exc.constraint_name != _STREAM_VERSION or attempt == MAX_ATTEMPTS:
                raise
    raise AssertionError("unreachable")  # the last attempt returns or raises

"""The live event feed: ``domain_event`` in position order, as Server-Sent Events.

Positions come from an identity column, taken at insert time, so a reader can
see position N+1 committed while N is still in flight. Delivering N+1 and moving
on would lose N for good, so the feed stops at a gap and waits until N shows up,
or until the row after the gap is old enough (``sse_gap_seconds``) that N must
have been rolled back (identity values are not reused).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
from sse_starlette import ServerSentEvent

from api.config import ApiSettings
from api.db import connection
from api.errors import InvalidInput, field_error, unavailable_service
from api.repositories import events
from api.schemas.events import FeedEvent

log = logging.getLogger("api.events")

# Positions are PostgreSQL bigints: a larger one cannot be asked for.
MAX_POSITION = 2**63 - 1
# A Last-Event-ID is a position as the stream sent it: ASCII digits, a bigint.
LAST_EVENT_ID_PATTERN = r"^[0-9]{1,19}$"


def position_after(last_event_id: str) -> int:
    """The position a ``Last-Event-ID`` names; 422 naming the header if it names none.

    Checked before the stream answers: a value the database cannot take would
    otherwise end the stream just after its 200."""
    if re.fullmatch(LAST_EVENT_ID_PATTERN, last_event_id) is None:
        raise InvalidInput(
            errors=[
                field_error("Last-Event-ID", "invalid_format", "Send back the id of the last event seen.")
            ]
        )
    position = int(last_event_id)
    if position > MAX_POSITION:
        raise InvalidInput(
            errors=[
                field_error(
                    "Last-Event-ID", "out_of_range", "Send back the id of the last event seen, unchanged."
                )
            ]
        )
    return position


class StreamSlots:
    """How many event streams each API key holds open, capped per key.

    A slot is taken before the stream answers and given back when it ends, by
    whichever comes first of the stream's own cleanup and the response's
    background task; one neither gives back (a crash in between) lapses after
    the longest a stream can last, so a key is never locked out for good."""

    def __init__(self, per_key: int, lifetime_seconds: float) -> None:
        self.per_key = per_key
        self.lifetime = lifetime_seconds
        self._held: dict[str, dict[int, float]] = {}
        self._tokens = itertools.count()

    def take(self, key_id: str) -> StreamSlot | None:
        now = time.monotonic()
        held = {t: until for t, until in self._held.get(key_id, {}).items() if until > now}
        if len(held) >= self.per_key:
            self._held[key_id] = held
            return None
        token = next(self._tokens)
        held[token] = now + self.lifetime
        self._held[key_id] = held
        return StreamSlot(self, key_id, token)

    def held(self, key_id: str) -> int:
        return len(self._held.get(key_id, {}))

    def _give_back(self, key_id: str, token: int) -> None:
        held = self._held.get(key_id)
        if held is not None:
            held.pop(token, None)
            if not held:
                del self._held[key_id]


@dataclass
class StreamSlot:
    slots: StreamSlots
    key_id: str
    token: int

    def release(self) -> None:
        """Idempotent: the stream's cleanup and the response's background task both call it."""
        self.slots._give_back(self.key_id, self.token)


def deliverable(rows: list[asyncpg.Record], last: int, gap_seconds: float) -> list[asyncpg.Record]:
    """The prefix of ``rows`` that can be sent without risking a skipped event."""
    out: list[asyncpg.Record] = []
    for row in rows:
        if row["position"] != last + 1 and row["age_seconds"] < gap_seconds:
            break
        out.append(row)
        last = row["position"]
    return out


def to_event(row: asyncpg.Record) -> FeedEvent:
    return FeedEvent(
        position=row["position"],
        event_id=row["event_id"],
        application_id=row["stream_id"],
        version=row["version"],
        event_type=row["event_type"],
        actor_role=row["actor_role"],
        reason=row["reason"],
        occurred_at=row["occurred_at"],
        carrier=row["carrier_code"],
        organisation_id=row["organisation_id"],
        payload=row["payload"] or {},
    )


async def stream(
    pool: asyncpg.Pool,
    settings: ApiSettings,
    *,
    after: int,
    event_types: frozenset[str] | None,
    limit: int | None,
    is_disconnected: Any,
    slot: StreamSlot | None = None,
) -> AsyncIterator[ServerSentEvent]:
    """Events after position ``after``, then live ones as they are committed.

    Ends after ``limit`` events, or after ``sse_max_stream_seconds`` (the client's
    EventSource reconnects with Last-Event-ID and loses nothing), or when the
    client goes away.
    """
    try:
        async for event in _events(pool, settings, after, event_types, limit, is_disconnected):
            yield event
    finally:
        if slot is not None:
            slot.release()


async def _events(
    pool: asyncpg.Pool,
    settings: ApiSettings,
    after: int,
    event_types: frozenset[str] | None,
    limit: int | None,
    is_disconnected: Any,
) -> AsyncIterator[ServerSentEvent]:
    last = after
    sent = 0
    started = time.monotonic()
    # Tells EventSource clients how soon to reconnect after the stream ends.
    yield ServerSentEvent(comment="stream start", retry=int(settings.sse_poll_seconds * 1000) + 500)
    while True:
        try:
            async with connection(pool, settings.pool_acquire_timeout) as conn:
                rows = await events.after(conn, last, settings.sse_batch)
        except Exception as exc:
            if unavailable_service(exc) is None:
                raise
            # The database went away mid-stream: end the stream cleanly (the
            # response has started, so no 503 can be sent any more); the client
            # reconnects with Last-Event-ID and, until the database is back,
            # gets a 503 with Retry-After.
            log.warning("event stream ended: the database is unavailable", extra={"after": last})
            return
        ready = deliverable(rows, last, settings.sse_gap_seconds)
        for row in ready:
            last = row["position"]
            if row["stream_id"] is None:
                continue  # not a registration's (repositories.events.after)
            if event_types is not None and row["event_type"] not in event_types:
                continue
            event = to_event(row)
            yield ServerSentEvent(
                data=json.dumps(event.model_dump(mode="json"), ensure_ascii=False),
                id=str(event.position),
                event=event.event_type,
            )
            sent += 1
            if limit is not None and sent >= limit:
                return
        if ready and len(ready) == len(rows) == settings.sse_batch:
            continue  # catching up: read the next batch at once
        if time.monotonic() - started >= settings.sse_max_stream_seconds or await is_disconnected():
            return
        await asyncio.sleep(settings.sse_poll_seconds)

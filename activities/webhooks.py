"""Webhook delivery: the sender activity of each endpoint's workflow, and the
deadline sweeper's activity.

Where deliveries come from. The event log (``domain_event``) is the only
source. A trigger on it writes one ``webhook_delivery`` row per enabled,
subscribed endpoint of the event's organisation, in the transaction that
appends the event (migrations/20261201100000_webhooks.sql), and notifies the
endpoint's channel when it commits. Chosen over a dispatcher that reads the log
by ``position`` with a cursor because positions are taken at insert, not at
commit: a reader can see N+1 before N commits, and a cursor past N loses it
unless the reader waits at every gap for a guessed time (as the SSE feed
does). A row written by the event's own transaction exists exactly when the
event does, needs no cursor and no gap timeout; the price is an indexed lookup
per appended event (two for an organisation with endpoints).

How they are sent (``deliver``, one pass of an endpoint's workflow,
workflows/webhook_endpoint.py): lease the due deliveries, at most the oldest
pending one per application (so each application's events arrive in order),
render their message once (stored with the delivery, so every attempt sends
the same bytes), sign it with the Standard Webhooks library, post them
concurrently, and record every attempt and the delivery's next state in one
transaction. 2xx: delivered. 410: the endpoint is disabled. Anything else
(3xx, 4xx, 5xx, timeout, refused address): retried with exponential backoff
and jitter until the retry window (3 days) is spent; then the delivery fails,
and if nothing reached the endpoint during that whole window, the endpoint is
disabled with the reason on it. The pass goes on while there is work, lingers
briefly for more (woken in-process by activities/webhook_waker.py), and tells
its workflow when the next retry is due.

At least once: a delivery is marked delivered only after the receiver's 2xx,
so a worker that dies in between makes the next pass send it again, with the
same ``webhook-id`` (receivers de-duplicate on it). Nothing else sends a
delivered message again, except an explicit redelivery or replay.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import random
import secrets
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
from standardwebhooks import Webhook
from temporalio import activity

from activities.repositories import webhooks as repo
from activities.webhook_http import AttemptResult, ReceiverPolicy, WebhookSender
from api.services import webhook_payloads
from api.services.documents import DocumentCipher
from app.settings import Settings
from domain.webhooks import RetrySchedule
from workflows.webhook_contracts import (
    ACTIVITY_DELIVER,
    ACTIVITY_SWEEP_DEADLINES,
    DeliverOutcome,
    DeliverRequest,
    SweepResult,
)

log = logging.getLogger("activities.webhooks")

SECRET_PREFIX = "whsec_"  # noqa: S105 - the Standard Webhooks prefix, not a secret
_SECRET_BYTES = 32
# How long a pass runs before it hands back to its workflow (which loops at once),
# at most: within its start-to-close timeout, with room for a last batch.
PASS_SECONDS = 60.0


def new_secret() -> tuple[str, bytes]:
    """A signing secret: as shown to its owner once (``whsec_`` + base64), and its bytes."""
    raw = secrets.token_bytes(_SECRET_BYTES)
    return SECRET_PREFIX + base64.b64encode(raw).decode(), raw


def webhook_id(delivery_id: uuid.UUID) -> str:
    return f"msg_{delivery_id.hex}"


def signature(msg_id: str, sent_at: datetime, body: str, keys: list[bytes]) -> str:
    """``webhook-signature``: one ``v1,<base64>`` per key, space-separated (the
    old key's too while a rotation overlaps), made by the Standard Webhooks
    library. It reads the timestamp as UTC whatever its zone, so it gets UTC."""
    at = sent_at.astimezone(UTC)
    return " ".join(Webhook(key).sign(msg_id, at, body) for key in keys)


def signing_keys(endpoint: asyncpg.Record, cipher: DocumentCipher, now: datetime) -> list[bytes]:
    keys = [cipher.decrypt(endpoint["id"], endpoint["secret_key_id"], bytes(endpoint["secret"]))]
    expires = endpoint["previous_secret_expires_at"]
    if endpoint["previous_secret"] is not None and expires is not None and expires > now:
        previous = bytes(endpoint["previous_secret"])
        keys.append(cipher.decrypt(endpoint["id"], endpoint["previous_secret_key_id"], previous))
    return keys


def body_of(payload: dict[str, Any]) -> str:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


@contextlib.asynccontextmanager
async def _heartbeating(every: float) -> AsyncIterator[None]:
    """Heartbeat while a batch is out: its attempts may last longer than the
    heartbeat timeout allows between two beats."""

    async def beat() -> None:
        while True:
            await asyncio.sleep(every)
            activity.heartbeat()

    ticker = asyncio.create_task(beat())
    try:
        yield
    finally:
        ticker.cancel()


class LocalWakeups:
    """Senders running in this process, by endpoint: the waker pokes a busy one
    directly instead of signalling its workflow."""

    def __init__(self) -> None:
        self._events: dict[str, set[asyncio.Event]] = {}

    @contextlib.contextmanager
    def busy(self, endpoint_id: str) -> Iterator[asyncio.Event]:
        event = asyncio.Event()
        self._events.setdefault(endpoint_id, set()).add(event)
        try:
            yield event
        finally:
            waiting = self._events.get(endpoint_id)
            if waiting is not None:
                waiting.discard(event)
                if not waiting:
                    del self._events[endpoint_id]

    def poke(self, endpoint_id: str) -> bool:
        """Wake this process's sender of the endpoint; False if there is none."""
        waiting = self._events.get(endpoint_id)
        for event in waiting or ():
            event.set()
        return bool(waiting)


class _PayloadCache:
    """Rendered ``data`` by source: one event goes to many endpoints, and is
    rendered once for all of them (events never change)."""

    def __init__(self, size: int = 4096) -> None:
        self._items: OrderedDict[tuple[str, int], dict[str, Any]] = OrderedDict()
        self._size = size

    def get(self, key: tuple[str, int]) -> dict[str, Any] | None:
        return self._items.get(key)

    def put(self, key: tuple[str, int], value: dict[str, Any]) -> None:
        self._items[key] = value
        while len(self._items) > self._size:
            self._items.popitem(last=False)


class WebhookActivities:
    def __init__(
        self,
        pool: asyncpg.Pool,
        settings: Settings,
        *,
        wakeups: LocalWakeups | None = None,
        policy: ReceiverPolicy | None = None,
        draw: Callable[[], float] = random.random,
    ) -> None:
        w = settings.webhooks
        self._pool = pool
        self._settings = w
        self._wakeups = wakeups or LocalWakeups()
        self._cipher = DocumentCipher(settings.encryption_keys)
        self._sender = WebhookSender(
            policy or ReceiverPolicy(allow_local=settings.webhook_receivers_may_be_local),
            timeout=w.attempt_timeout.total_seconds(),
            body_limit=w.response_body_limit,
            connections=w.concurrency,
        )
        self._schedule = RetrySchedule(w.retry_initial, w.retry_max_interval, w.retry_window, w.retry_jitter)
        self._draw = draw
        self._payloads = _PayloadCache()
        # A lease outlasts any attempt, so a delivery is never sent by two
        # senders at once; only a sender that died mid-attempt leaves one to expire.
        self._lease_seconds = w.attempt_timeout.total_seconds() * 2 + 1

    @property
    def wakeups(self) -> LocalWakeups:
        return self._wakeups

    def callables(self) -> list[Callable[..., Any]]:
        return [self.deliver, self.sweep_deadlines]

    @activity.defn(name=ACTIVITY_DELIVER)
    async def deliver(self, req: DeliverRequest) -> DeliverOutcome:
        endpoint_id = req.endpoint_id
        started = time.monotonic()
        linger = self._settings.linger.total_seconds()
        beat = self._settings.heartbeat_timeout.total_seconds() / 3
        # A pass that outlived its timeout would run beside its own retry.
        budget = activity.info().start_to_close_timeout
        attempt = self._settings.attempt_timeout.total_seconds()
        pass_seconds = PASS_SECONDS
        if budget is not None:
            pass_seconds = max(min(PASS_SECONDS, budget.total_seconds() - 2 * attempt - 5), 0.0)
        sent = 0
        with self._wakeups.busy(endpoint_id) as poked:
            idle_since = time.monotonic()
            while True:
                activity.heartbeat(sent)
                poked.clear()
                async with self._pool.acquire() as conn:
                    endpoint = await repo.get_endpoint(conn, endpoint_id)
                    if endpoint is None:
                        return DeliverOutcome(sent=sent, stopped="deleted")
                    if not endpoint["enabled"]:
                        return DeliverOutcome(sent=sent, stopped="disabled")
                    # As many as may be on their way at once: all are sent side by side.
                    claimed = await repo.claim_due(
                        conn, endpoint_id, self._lease_seconds, self._settings.concurrency
                    )
                    due_in = None if claimed else await repo.next_due_in(conn, endpoint_id)
                if claimed:
                    async with _heartbeating(beat):
                        sent += await self._send(endpoint, claimed)
                    idle_since = time.monotonic()
                    if time.monotonic() - started > pass_seconds:
                        return DeliverOutcome(sent=sent, next_due_in=0.0)
                    continue
                remaining = linger - (time.monotonic() - idle_since)
                if remaining <= 0:
                    break
                wait = min(remaining, beat, due_in if due_in is not None else remaining)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(poked.wait(), timeout=max(wait, 0.001))
        # Asked again after leaving the busy set: a delivery queued while this
        # pass was leaving was either seen here or woke the workflow by signal.
        async with self._pool.acquire() as conn:
            return DeliverOutcome(sent=sent, next_due_in=await repo.next_due_in(conn, endpoint_id))

    async def _send(self, endpoint: asyncpg.Record, claimed: list[asyncpg.Record]) -> int:
        payloads = await self._payloads_of(claimed)
        keys = signing_keys(endpoint, self._cipher, datetime.now(UTC))
        results = await asyncio.gather(
            *(self._attempt(endpoint, row, payloads[row["id"]], keys) for row in claimed)
        )
        records = [self._outcome(row, at, result, payloads[row["id"]]) for row, (at, result) in results]
        async with self._pool.acquire() as conn, conn.transaction():
            await repo.record_attempts(conn, records)
            await self._follow_endpoint(conn, endpoint, claimed, records)
        return len(records)

    async def _attempt(
        self, endpoint: asyncpg.Record, row: asyncpg.Record, payload: dict[str, Any], keys: list[bytes]
    ) -> tuple[asyncpg.Record, tuple[datetime, AttemptResult]]:
        msg_id = webhook_id(row["id"])
        body = body_of(payload)
        sent_at = datetime.now(UTC)
        headers = {
            "content-type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(sent_at.timestamp())),
            "webhook-signature": signature(msg_id, sent_at, body, keys),
        }
        result = await self._sender.send(endpoint["id"], endpoint["url"], headers, body.encode())
        return row, (sent_at, result)

    def _outcome(
        self, row: asyncpg.Record, at: datetime, result: AttemptResult, payload: dict[str, Any]
    ) -> repo.AttemptRecord:
        number = row["attempts"] + 1
        failures = row["window_failures"]
        status, next_at, reason = "succeeded", None, None
        if not result.succeeded:
            failures += 1
            if result.status_code == 410:
                status, reason = "failed", "gone"
            else:
                window_start = row["first_attempt_at"] or at
                next_at = self._schedule.next_attempt(failures, at, window_start, self._draw())
                status = "pending" if next_at is not None else "failed"
                reason = None if next_at is not None else "retries_exhausted"
        return repo.AttemptRecord(
            delivery_id=row["id"],
            number=number,
            attempted_at=at,
            status_code=result.status_code,
            latency_ms=result.latency_ms,
            response_body=result.body,
            error=result.error,
            succeeded=result.succeeded,
            status=status,
            next_attempt_at=next_at,
            window_failures=failures,
            failure_reason=reason,
            payload=payload,
        )

    async def _follow_endpoint(
        self,
        conn: asyncpg.Connection,
        endpoint: asyncpg.Record,
        claimed: list[asyncpg.Record],
        records: list[repo.AttemptRecord],
    ) -> None:
        endpoint_id = endpoint["id"]
        if any(r.succeeded for r in records):
            await repo.mark_health(conn, endpoint_id, first_failure=None)
        else:
            await repo.mark_health(conn, endpoint_id, first_failure=min(r.attempted_at for r in records))
        gone = next((r for r in records if r.failure_reason == "gone"), None)
        if gone is not None:
            await repo.disable_endpoint(
                conn,
                endpoint_id,
                "gone",
                f"The endpoint answered 410 Gone at {gone.attempted_at.isoformat()}.",
            )
            log.warning("webhook endpoint answered 410; disabled", extra={"endpoint": endpoint_id})
            return
        if any(r.succeeded for r in records):
            return
        started = {
            row["id"]: row["first_attempt_at"] or rec.attempted_at
            for row, rec in zip(claimed, records, strict=True)
        }
        exhausted = [r for r in records if r.failure_reason == "retries_exhausted"]
        if exhausted:
            last = exhausted[-1]
            window_start = min(started[r.delivery_id] for r in exhausted)
            answer = f"HTTP {last.status_code}" if last.status_code is not None else last.error
            detail = (
                f"Nothing was delivered since {window_start.isoformat()}, through every retry of "
                f"{self._settings.retry_window} (last attempt: {answer})."
            )
            if await repo.disable_endpoint(
                conn, endpoint_id, "failing", detail, failing_since_at_most=window_start
            ):
                log.warning("webhook endpoint failing for the whole retry window; disabled",
                            extra={"endpoint": endpoint_id})  # fmt: skip

    async def _payloads_of(self, claimed: list[asyncpg.Record]) -> dict[uuid.UUID, dict[str, Any]]:
        """Each claimed delivery's message: as stored, or rendered now."""
        missing_events = {
            r["event_position"]
            for r in claimed
            if r["payload"] is None
            and r["event_position"] is not None
            and self._payloads.get(("event", r["event_position"])) is None
        }
        missing_notices = {
            r["notice_id"]
            for r in claimed
            if r["payload"] is None
            and r["notice_id"] is not None
            and self._payloads.get(("notice", r["notice_id"])) is None
        }
        if missing_events or missing_notices:
            async with self._pool.acquire() as conn:
                for position, data in (
                    await webhook_payloads.event_data(conn, sorted(missing_events))
                ).items():
                    self._payloads.put(("event", position), data)
                for notice, data in (
                    await webhook_payloads.notice_data(conn, sorted(missing_notices))
                ).items():
                    self._payloads.put(("notice", notice), data)
        out: dict[uuid.UUID, dict[str, Any]] = {}
        for r in claimed:
            if r["payload"] is not None:
                out[r["id"]] = r["payload"]
                continue
            key = (
                ("event", r["event_position"])
                if r["event_position"] is not None
                else ("notice", r["notice_id"])
            )
            data = self._payloads.get(key) or {"application_id": r["application_id"]}
            when = data.get("occurred_at") or data.get("noticed_at")
            timestamp = datetime.fromisoformat(when) if when else datetime.now(UTC)
            out[r["id"]] = webhook_payloads.message(r["event_type"], timestamp, data)
        return out

    @activity.defn(name=ACTIVITY_SWEEP_DEADLINES)
    async def sweep_deadlines(self) -> SweepResult:
        """Record a notice for every deadline within the notice period that has
        none yet; each notice's insert queues its deliveries."""
        lead = self._settings.deadline_notice_lead.total_seconds()
        noticed = 0
        async with self._pool.acquire() as conn:
            for row in await repo.approaching_deadlines(conn, lead):
                # What the deadline is for, as the read model says (written with it).
                kind = row["next_deadline_kind"] or "unknown"
                noticed += await repo.record_notice(
                    conn,
                    application_id=row["id"],
                    organisation_id=row["organisation_id"],
                    deadline_at=row["next_deadline"],
                    kind=kind,
                    stage=row["stage"],
                    status=row["status"],
                )
        if noticed:
            log.info("deadline notices recorded", extra={"notices": noticed})
        return SweepResult(noticed=noticed)

    async def aclose(self) -> None:
        await self._sender.aclose()

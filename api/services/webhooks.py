"""Webhook endpoints and their delivery log, for the routes and the console.

Who may do what: an organisation's applicant manages its own organisation's
endpoints, an admin any organisation's. Another organisation's endpoint (and
its deliveries) is 404, exactly like one that does not exist. Every function
takes the caller's ``Principal`` and checks this itself, so a console calling
them gets the same rules as the API.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import asyncpg

from activities.repositories import webhooks as delivery_repo
from activities.webhook_http import ReceiverPolicy, ReceiverRefused, Resolver, system_resolver
from activities.webhooks import new_secret
from api.auth import ORGANISATION_ID, Principal, Role
from api.errors import Conflict, InvalidInput, NotFound, field_error, invalid_choices
from api.ids import new_id
from api.repositories import webhooks as repo
from api.schemas.common import Page, decode_cursor, encode_cursor
from api.schemas.webhooks import (
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEndpointCreate,
    WebhookEndpointCreated,
    WebhookEndpointUpdate,
    WebhookEventTypeList,
    WebhookEventTypeOut,
    WebhookReplay,
    WebhookSecretRotated,
)
from api.services.documents import DocumentCipher
from app.settings import Settings, WebhookSettings
from domain.webhooks import CATALOGUE, routes_for

DELIVERY_ID_PREFIX = "msg_"
CATALOGUE_TYPES = [t.type for t in CATALOGUE]
T = TypeVar("T")


def event_types() -> WebhookEventTypeList:
    return WebhookEventTypeList(
        items=[
            WebhookEventTypeOut(type=t.type, description=t.description, domain_event_types=list(t.sources))
            for t in CATALOGUE
        ]
    )


def receiver_policy(settings: Settings, resolver: Resolver = system_resolver) -> ReceiverPolicy:
    return ReceiverPolicy(
        allow_local=settings.webhook_receivers_may_be_local,
        resolver=resolver,
        resolve_timeout=settings.webhooks.resolve_timeout.total_seconds(),
    )


def _endpoint(row: asyncpg.Record) -> WebhookEndpoint:
    return WebhookEndpoint(**{k: row[k] for k in WebhookEndpoint.model_fields})


def _scope(principal: Principal) -> str | None:
    """The organisation the caller is confined to; None for an admin."""
    return None if principal.role is Role.ADMIN else principal.require_organisation()


async def _own_endpoint(conn: asyncpg.Connection, principal: Principal, endpoint_id: str) -> asyncpg.Record:
    row = await repo.get_endpoint(conn, endpoint_id, _scope(principal))
    if row is None:
        raise NotFound(f"No webhook endpoint {endpoint_id!r}")
    return row


def _cursor_value(parse: Callable[[Any], T], value: Any) -> T:
    """A value out of a cursor (well-formed, but perhaps made up by the client)."""
    try:
        return parse(value)
    except (TypeError, ValueError):
        raise InvalidInput(
            errors=[
                field_error(
                    "cursor", "invalid_cursor", "Pass back a next_cursor from this listing unchanged."
                )
            ]
        ) from None


def _check_event_types(names: Sequence[str]) -> list[str]:
    """The names, once each in catalogue order; 422 ``invalid_choice`` naming each unknown one."""
    errors = [
        e for i, n in enumerate(names) for e in invalid_choices(f"event_types[{i}]", n, CATALOGUE_TYPES)
    ]
    if errors:
        raise InvalidInput(errors=errors)
    return sorted(set(names), key=CATALOGUE_TYPES.index)


async def check_url(policy: ReceiverPolicy, url: str) -> str:
    """The URL, if it may receive webhooks (its form, and the addresses it resolves to now)."""
    try:
        await policy.resolve(policy.check_url(url))
    except ReceiverRefused as exc:
        raise InvalidInput(exc.message, errors=[field_error("url", exc.code, exc.message)]) from None
    return url


def _organisation_for(principal: Principal, requested: str | None) -> str:
    if principal.role is Role.ADMIN:
        if requested is None or not ORGANISATION_ID.fullmatch(requested):
            raise InvalidInput(
                errors=[
                    field_error(
                        "organisation_id",
                        "required" if requested is None else "invalid_format",
                        "Admins name the organisation: 1-64 letters, digits, '_', '.', ':' or '-'.",
                    )
                ]
            )
        return requested
    own = principal.require_organisation()
    if requested is not None and requested != own:
        raise InvalidInput(
            errors=[field_error("organisation_id", "organisation_mismatch", "Omit it, or give your own.")]
        )
    return own


async def create_endpoint(
    conn: asyncpg.Connection,
    principal: Principal,
    body: WebhookEndpointCreate,
    *,
    policy: ReceiverPolicy,
    cipher: DocumentCipher,
) -> WebhookEndpointCreated:
    organisation_id = _organisation_for(principal, body.organisation_id)
    names = _check_event_types(body.event_types)
    url = await check_url(policy, body.url)
    endpoint_id = new_id("whe")
    shown, raw = new_secret()
    key_id, encrypted = cipher.encrypt(endpoint_id, raw)
    row = await repo.insert_endpoint(
        conn,
        endpoint_id=endpoint_id,
        organisation_id=organisation_id,
        url=url,
        description=body.description,
        event_types=names,
        routes=routes_for(names),
        enabled=body.enabled,
        secret_key_id=key_id,
        secret=encrypted,
        created_by=principal.actor_id,
    )
    return WebhookEndpointCreated(**_endpoint(row).model_dump(), secret=shown)


async def get_endpoint(conn: asyncpg.Connection, principal: Principal, endpoint_id: str) -> WebhookEndpoint:
    return _endpoint(await _own_endpoint(conn, principal, endpoint_id))


async def list_endpoints(
    conn: asyncpg.Connection,
    principal: Principal,
    *,
    organisation_id: str | None,
    cursor: str | None,
    limit: int,
) -> Page[WebhookEndpoint]:
    scope = _scope(principal) or organisation_id
    bound = {"organisation_id": scope}
    after = None
    if cursor:
        created, ident = decode_cursor(cursor, "whe", 2, bound)
        after = (_cursor_value(datetime.fromisoformat, created), str(ident))
    rows = await repo.list_endpoints(conn, scope, after=after, limit=limit + 1)
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = encode_cursor("whe", [last["created_at"].isoformat(), last["id"]], bound)
    return Page[WebhookEndpoint](items=[_endpoint(r) for r in rows[:limit]], next_cursor=next_cursor)


async def update_endpoint(
    conn: asyncpg.Connection,
    principal: Principal,
    endpoint_id: str,
    body: WebhookEndpointUpdate,
    *,
    policy: ReceiverPolicy,
) -> WebhookEndpoint:
    async with conn.transaction():
        current = await _own_endpoint(conn, principal, endpoint_id)
        changes: dict[str, Any] = {}
        sent = body.model_fields_set
        if "url" in sent and body.url is not None:
            changes["url"] = await check_url(policy, body.url)
        if "event_types" in sent and body.event_types is not None:
            names = _check_event_types(body.event_types)
            changes |= {"event_types": names, "routes": routes_for(names)}
        if "description" in sent:
            changes["description"] = body.description
        if body.enabled is False and current["enabled"]:
            await delivery_repo.disable_endpoint(
                conn, endpoint_id, "owner", f"Disabled by {principal.actor_id}."
            )
        elif body.enabled is True and not current["enabled"]:
            changes["enabled"] = True
        row = await repo.update_endpoint(conn, endpoint_id, changes)
    assert row is not None  # locked in by the transaction above
    return _endpoint(row)


async def delete_endpoint(
    conn: asyncpg.Connection, principal: Principal, endpoint_id: str
) -> WebhookEndpoint:
    """Delete the endpoint and its delivery log; its workflow ends at its next pass."""
    row = await _own_endpoint(conn, principal, endpoint_id)
    await repo.delete_endpoint(conn, endpoint_id)
    return _endpoint(row)


async def rotate_secret(
    conn: asyncpg.Connection,
    principal: Principal,
    endpoint_id: str,
    *,
    cipher: DocumentCipher,
    settings: Settings,
) -> WebhookSecretRotated:
    await _own_endpoint(conn, principal, endpoint_id)
    shown, raw = new_secret()
    key_id, encrypted = cipher.encrypt(endpoint_id, raw)
    row = await repo.rotate_secret(
        conn,
        endpoint_id,
        secret_key_id=key_id,
        secret=encrypted,
        overlap_seconds=settings.webhooks.secret_overlap.total_seconds(),
    )
    endpoint = _endpoint(row)
    assert endpoint.previous_secret_expires_at is not None
    return WebhookSecretRotated(
        endpoint=endpoint, secret=shown, previous_secret_expires_at=endpoint.previous_secret_expires_at
    )


def parse_delivery_id(delivery_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(hex=delivery_id.removeprefix(DELIVERY_ID_PREFIX))
    except ValueError:
        raise NotFound(f"No delivery {delivery_id!r}") from None


def _delivery(row: asyncpg.Record, attempts: list[asyncpg.Record]) -> WebhookDelivery:
    return WebhookDelivery(
        id=DELIVERY_ID_PREFIX + row["id"].hex,
        endpoint_id=row["endpoint_id"],
        application_id=row["application_id"],
        event_type=row["event_type"],
        status=row["status"],
        attempts=row["attempts"],
        next_attempt_at=row["next_attempt_at"] if row["status"] == "pending" else None,
        failure_reason=row["failure_reason"],
        created_at=row["created_at"],
        ended_at=row["ended_at"],
        payload=row["payload"],
        attempt_log=[WebhookAttempt(**{k: a[k] for k in WebhookAttempt.model_fields}) for a in attempts],
    )


async def _with_attempts(conn: asyncpg.Connection, rows: list[asyncpg.Record]) -> list[WebhookDelivery]:
    by_delivery: dict[uuid.UUID, list[asyncpg.Record]] = {}
    for attempt in await repo.attempts_of(conn, [r["id"] for r in rows]):
        by_delivery.setdefault(attempt["delivery_id"], []).append(attempt)
    return [_delivery(r, by_delivery.get(r["id"], [])) for r in rows]


async def list_deliveries(
    conn: asyncpg.Connection,
    principal: Principal,
    endpoint_id: str,
    *,
    status: str | None,
    event_type: str | None,
    application_id: str | None,
    cursor: str | None,
    limit: int,
) -> Page[WebhookDelivery]:
    """Newest first, each with every attempt. A cursor continues the listing it
    came from: with other filters it is 400 ``cursor_mismatch``."""
    await _own_endpoint(conn, principal, endpoint_id)
    unknown = invalid_choices("event_type", event_type, CATALOGUE_TYPES)
    if unknown:
        raise InvalidInput(errors=unknown)
    bound = {"status": status, "event_type": event_type, "application_id": application_id}
    before = None
    if cursor:
        (seq,) = decode_cursor(cursor, "whd", 1, bound)
        before = _cursor_value(int, seq)
    rows = await repo.list_deliveries(
        conn,
        endpoint_id,
        status=status,
        event_type=event_type,
        application_id=application_id,
        before_seq=before,
        limit=limit + 1,
    )
    next_cursor = encode_cursor("whd", [rows[limit - 1]["seq"]], bound) if len(rows) > limit else None
    return Page[WebhookDelivery](items=await _with_attempts(conn, rows[:limit]), next_cursor=next_cursor)


async def get_delivery(
    conn: asyncpg.Connection, principal: Principal, endpoint_id: str, delivery_id: str
) -> WebhookDelivery:
    await _own_endpoint(conn, principal, endpoint_id)
    row = await repo.get_delivery(conn, endpoint_id, parse_delivery_id(delivery_id))
    if row is None:
        raise NotFound(f"No delivery {delivery_id!r} for this endpoint")
    return (await _with_attempts(conn, [row]))[0]


def _require_enabled(endpoint: asyncpg.Record) -> None:
    if not endpoint["enabled"]:
        raise Conflict(
            "The endpoint is disabled; enable it (PATCH enabled=true) first",
            code="endpoint_disabled",
            extra={"disabled_reason": endpoint["disabled_reason"]},
        )


async def redeliver(
    conn: asyncpg.Connection, principal: Principal, endpoint_id: str, delivery_id: str
) -> WebhookDelivery:
    """Send a delivered or failed message again, with its own ``webhook-id``."""
    async with conn.transaction():
        endpoint = await _own_endpoint(conn, principal, endpoint_id)
        ident = parse_delivery_id(delivery_id)
        if await repo.get_delivery(conn, endpoint_id, ident) is None:
            raise NotFound(f"No delivery {delivery_id!r} for this endpoint")
        _require_enabled(endpoint)
        row = await repo.requeue_delivery(conn, endpoint_id, ident)
        if row is None:
            raise Conflict("The delivery is still pending; it is on its way", code="delivery_pending")
    return (await _with_attempts(conn, [row]))[0]


def _span(length: timedelta) -> str:
    """A setting's length in words, for a message ("3 days", "12 hours")."""
    seconds = int(length.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} seconds"


async def replay(
    conn: asyncpg.Connection,
    principal: Principal,
    endpoint_id: str,
    *,
    since: datetime,
    until: datetime | None,
    limits: WebhookSettings,
) -> WebhookReplay:
    """Queue a period's messages again. ``since`` and ``until`` are aware (the
    routes take them as ``RequestDatetime``). Bounded: a period of at most
    ``replay_max_window`` holding at most ``replay_max_messages`` messages, so
    that one call cannot queue the organisation's whole history; a longer
    outage is replayed a period at a time."""
    now = datetime.now(UTC)
    if since > now:
        raise InvalidInput(errors=[field_error("since", "in_future", "since is in the future.")])
    if until is not None and until <= since:
        raise InvalidInput(errors=[field_error("until", "before_since", "until must be after since.")])
    window = limits.replay_max_window
    if (until or now) - since > window:
        raise InvalidInput(
            f"A replay covers at most {_span(window)}",
            errors=[
                field_error(
                    "since" if until is None else "until",
                    "window_too_long",
                    f"Replay at most {_span(window)} at a time: give until within {_span(window)} of "
                    "since, and call again for the next period.",
                )
            ],
        )
    async with conn.transaction():
        endpoint = await _own_endpoint(conn, principal, endpoint_id)
        _require_enabled(endpoint)
        queued = await repo.replay(
            conn,
            endpoint_id=endpoint_id,
            organisation_id=endpoint["organisation_id"],
            routes=routes_for(endpoint["event_types"]),
            since=since,
            until=until,
            at_most=limits.replay_max_messages,
        )
        if queued is None:
            # Leaving the block by an exception rolls back what was queued.
            raise InvalidInput(
                f"A replay queues at most {limits.replay_max_messages} messages",
                errors=[
                    field_error(
                        "until",
                        "too_many_messages",
                        f"The period holds more than {limits.replay_max_messages} messages: replay a "
                        "shorter one (an earlier until), then the next.",
                    )
                ],
            )
    return WebhookReplay(queued=queued, since=since, until=until)

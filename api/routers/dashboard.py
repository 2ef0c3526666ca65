"""Dashboards: every registration, counts, and the live event stream."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request
from sse_starlette import EventSourceResponse
from starlette.background import BackgroundTask

from api.auth import Principal, allow
from api.errors import InvalidInput, TooManyRequests, field_error, invalid_choices
from api.permissions import Action
from api.repositories.registrations import Filters
from api.routers._common import Ctx, Cursor, Limit, documented
from api.schemas.common import Page
from api.schemas.dates import RequestDatetime
from api.schemas.registrations import Registration, RegistrationStats
from api.services import events, registrations
from api.services.choices import check_carrier
from domain.lifecycle import Lifecycle
from domain.service_rules import ChangeKind, ServiceState
from domain.timeline import EventType
from workflows.contracts import Stage, Status

router = APIRouter(tags=["dashboards"])

# Every event type the log holds: the registration's own, then its service's.
EVENT_TYPES = tuple(e.value for e in (*EventType, *ChangeKind))


def _filters(
    stage: Stage | None,
    status: Status | None,
    carrier: str | None,
    organisation_id: str | None,
    overdue: bool | None,
    created_from: datetime | None,
    created_to: datetime | None,
    lifecycle: Lifecycle | None = None,
    service_state: ServiceState | None = None,
) -> Filters:
    # An empty window is a client's mistake (dates swapped), not an empty answer.
    if created_from is not None and created_to is not None and created_to <= created_from:
        raise InvalidInput(
            errors=[
                field_error(
                    "created_to",
                    "before_created_from",
                    "created_to must be later than created_from: the window is empty.",
                )
            ]
        )
    return Filters(
        stage=stage.value if stage else None,
        status=status.value if status else None,
        lifecycle=lifecycle.value if lifecycle else None,
        service_state=service_state.value if service_state else None,
        carrier=carrier,
        organisation_id=organisation_id,
        overdue=overdue,
        created_from=created_from,
        created_to=created_to,
    )


StageQ = Annotated[Stage | None, Query()]
StatusQ = Annotated[Status | None, Query()]
LifecycleQ = Annotated[
    Lifecycle | None,
    Query(description="One lifecycle value, from application to the number's release (docs/domain.md)."),
]
ServiceStateQ = Annotated[
    ServiceState | None, Query(description="After activation: what the number does now.")
]
CarrierQ = Annotated[str | None, Query(max_length=64, examples=["china_unicom"])]
OrgQ = Annotated[str | None, Query(max_length=64, examples=["org_acme"])]
OverdueQ = Annotated[bool | None, Query(description="Only overdue (true) or only not overdue (false).")]
FromQ = Annotated[
    RequestDatetime | None, Query(description="Created at or after (inclusive), ISO 8601 with offset.")
]
ToQ = Annotated[
    RequestDatetime | None, Query(description="Created before (exclusive), ISO 8601 with offset.")
]


@router.get(
    "/v1/registrations",
    response_model=Page[Registration],
    summary="List and filter all registrations",
    description="Filter by stage, status, lifecycle, service state, carrier, organisation, overdue and "
    "creation range. Keyset pagination on (created_at, id): rows that arrive while you page never shift "
    "or repeat the rest.",
    **documented(400),
)
async def list_registrations(
    ctx: Ctx,
    _: Annotated[Principal, allow(Action.VIEW_DASHBOARD)],
    stage: StageQ = None,
    status: StatusQ = None,
    lifecycle: LifecycleQ = None,
    service_state: ServiceStateQ = None,
    carrier: CarrierQ = None,
    organisation_id: OrgQ = None,
    overdue: OverdueQ = None,
    created_from: FromQ = None,
    created_to: ToQ = None,
    order: Annotated[Literal["desc", "asc"], Query(description="By creation time.")] = "desc",
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[Registration]:
    filters = _filters(
        stage, status, carrier, organisation_id, overdue, created_from, created_to, lifecycle, service_state
    )
    async with ctx.connection() as conn:
        await check_carrier(conn, carrier)
        return await registrations.list_all(conn, filters, order=order, cursor=cursor, limit=limit)


@router.get(
    "/v1/registrations/stats",
    response_model=RegistrationStats,
    summary="Counts per lifecycle, stage and carrier",
    description="Per lifecycle value, stage and carrier, with how many are overdue; `in_service` counts "
    "the numbers their holders still have (a number in quarantine or released never is). With the same "
    "filters as the listing (except stage, status and lifecycle).",
    **documented(),
)
async def registration_stats(
    ctx: Ctx,
    _: Annotated[Principal, allow(Action.VIEW_DASHBOARD)],
    carrier: CarrierQ = None,
    organisation_id: OrgQ = None,
    overdue: OverdueQ = None,
    created_from: FromQ = None,
    created_to: ToQ = None,
    service_state: ServiceStateQ = None,
) -> RegistrationStats:
    filters = _filters(
        None, None, carrier, organisation_id, overdue, created_from, created_to, service_state=service_state
    )
    async with ctx.connection() as conn:
        await check_carrier(conn, carrier)
        return await registrations.stats(conn, filters)


_SSE_DOC: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "A `text/event-stream`. Each message: `id` = position, `event` = event type, "
        "`data` = a FeedEvent as JSON.",
        "content": {
            "text/event-stream": {
                # One event of the stream, as OpenAPI 3.2's itemSchema has it (and as
                # 3.1 tools read `schema` for event streams): its data is a FeedEvent
                # in JSON; the schema is not that of the whole text.
                "schema": {
                    "type": "object",
                    "description": "One Server-Sent Event.",
                    "properties": {
                        "id": {"type": "string", "description": "The event's position (resume after it)."},
                        "event": {"type": "string", "description": "The event type."},
                        "data": {
                            "type": "string",
                            "contentMediaType": "application/json",
                            "contentSchema": {"$ref": "#/components/schemas/FeedEvent"},
                        },
                        "retry": {"type": "integer", "description": "Milliseconds before reconnecting."},
                    },
                    "required": ["data"],
                },
                "example": 'id: 42\nevent: ApplicationApproved\ndata: {"position": 42, ...}\n\n',
            }
        },
    }
}


@router.get(
    "/v1/events",
    summary="Live stream of events (Server-Sent Events)",
    description="Every event of the registrations (and their numbers' service) in order, then new ones "
    "as they happen; the console's audit trail (staff sign-ins, reveals of personal data) is not in "
    "it. Ids (positions) increase but skip what is not shown. Resume with the "
    "`Last-Event-ID` header (EventSource sends it on reconnect) or `after`. The server ends a stream "
    "after a while; reconnecting loses nothing.",
    response_class=EventSourceResponse,
    responses={**_SSE_DOC, **documented()["responses"]},
)
async def event_stream(
    request: Request,
    ctx: Ctx,
    principal: Annotated[Principal, allow(Action.VIEW_DASHBOARD)],
    last_event_id: Annotated[
        str | None,
        Header(
            alias="Last-Event-ID",
            pattern=events.LAST_EVENT_ID_PATTERN,
            description="The id of the last event seen (EventSource sends it on reconnect).",
        ),
    ] = None,
    after: Annotated[
        int | None,
        Query(
            ge=0,
            le=events.MAX_POSITION,
            description="Start after this position (default: the Last-Event-ID header, else the beginning).",
        ),
    ] = None,
    types: Annotated[
        list[str] | None,
        Query(
            max_length=50,
            description="Only these event types.",
            json_schema_extra={"items": {"type": "string", "enum": list(EVENT_TYPES)}},
        ),
    ] = None,
    limit: Annotated[
        int | None, Query(ge=1, le=10000, description="End the stream after this many events.")
    ] = None,
) -> EventSourceResponse:
    unknown_types = invalid_choices("types", types, EVENT_TYPES)
    if unknown_types:
        raise InvalidInput(errors=unknown_types)
    start = after
    if start is None and last_event_id:
        start = events.position_after(last_event_id)
    slots: events.StreamSlots = request.app.state.stream_slots
    slot = slots.take(principal.key_id)
    if slot is None:
        raise TooManyRequests(
            f"This API key already has {slots.per_key} event streams open: close one, or share one",
            retry_after=ctx.api.retry_after_seconds,
        )
    return EventSourceResponse(
        events.stream(
            ctx.pool,
            ctx.api,
            after=start or 0,
            event_types=frozenset(types) if types else None,
            limit=limit,
            is_disconnected=request.is_disconnected,
            slot=slot,
        ),
        ping=ctx.api.sse_ping_seconds,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        # Also when the stream never starts (HEAD, a client gone at once).
        background=BackgroundTask(slot.release),
    )

"""Live updates: one Server-Sent Events stream per open page.

It follows the event log (api.services.events, as the API's /v1/events does)
from where it stood when the page opened, and sends a ``changed`` event naming
the application for each new event; pages re-fetch the parts they show
(htmx ``hx-trigger="sse:changed"``). Nothing of the event itself is sent, so
the stream shows no more than the pages do.

``Last-Event-ID`` is checked as the API checks it, before the stream answers,
and each session holds a bounded number of streams at once, as each API key does.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Request
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.background import BackgroundTask

from api.errors import TooManyRequests
from api.permissions import Action
from api.repositories import events as event_feed
from api.services import events
from web import views
from web.http import Staff, context, require

router = APIRouter()


@router.get("/live")
async def live(
    request: Request,
    staff: Annotated[Staff, require(Action.USE_CONSOLE)],
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=64)] = None,
) -> EventSourceResponse:
    ctx = context(request)
    if last_event_id:
        start = events.position_after(last_event_id)
    else:
        async with ctx.connection() as conn:
            start = await event_feed.last_position(conn)
    slots: events.StreamSlots = request.app.state.live_slots
    slot = slots.take(staff.session.token_hash.hex())
    if slot is None:
        _ = views.gettext(request)
        raise TooManyRequests(
            _("This session already has %(count)d live pages open: close one and reload.")
            % {"count": slots.per_key},
            retry_after=ctx.api.retry_after_seconds,
        )

    async def changes() -> AsyncIterator[ServerSentEvent]:
        async for message in events.stream(
            ctx.pool,
            ctx.api,
            after=start,
            event_types=None,
            limit=None,
            is_disconnected=request.is_disconnected,
            slot=slot,
        ):
            if message.id is None:  # the stream's opening comment (with its retry delay)
                yield message
                continue
            event = json.loads(str(message.data))
            yield ServerSentEvent(
                data=json.dumps({"application_id": event["application_id"]}),
                id=message.id,
                event="changed",
            )

    return EventSourceResponse(
        changes(),
        ping=ctx.api.sse_ping_seconds,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        # Also when the stream never starts (HEAD, a client gone at once).
        background=BackgroundTask(slot.release),
    )

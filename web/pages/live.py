"""Live updates: one Server-Sent Events stream per open page.

It follows the event log (api.services.events, as the API's /v1/events does)
from where it stood when the page opened, and sends a ``changed`` event naming
the application for each new event; pages re-fetch the parts they show
(htmx ``hx-trigger="sse:changed"``). Nothing of the event itself is sent, so
the stream shows no more than the pages do.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Request
from sse_starlette import EventSourceResponse, ServerSentEvent

from api.permissions import Action
from api.repositories import events as event_feed
from api.services import events
from web.http import Staff, context, require

router = APIRouter()


@router.get("/live")
async def live(
    request: Request,
    staff: Annotated[Staff, require(Action.USE_CONSOLE)],
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=20)] = None,
) -> EventSourceResponse:
    ctx = context(request)
    if last_event_id and last_event_id.isdigit():
        start = int(last_event_id)
    else:
        async with ctx.connection() as conn:
            start = await event_feed.last_position(conn)

    async def changes() -> AsyncIterator[ServerSentEvent]:
        async for message in events.stream(
            ctx.pool,
            ctx.api,
            after=start,
            event_types=None,
            limit=None,
            is_disconnected=request.is_disconnected,
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
    )

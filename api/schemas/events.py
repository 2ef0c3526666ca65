"""The live event feed (Server-Sent Events)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from api.schemas.common import JsonObject, UtcDateTime


class FeedEvent(BaseModel):
    """The ``data`` of one SSE message; its SSE ``id`` is ``position`` and its
    ``event`` is ``event_type``."""

    position: int = Field(description="Global order of the event; resume after it with Last-Event-ID.")
    event_id: str
    application_id: str
    version: int
    event_type: str
    actor_role: str
    reason: str | None
    occurred_at: UtcDateTime
    carrier: str | None
    organisation_id: str | None
    payload: JsonObject = Field(description="Event facts; personal data is masked at the source.")

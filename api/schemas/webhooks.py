"""Webhook endpoints, their deliveries and the event-type catalogue as the API shows them."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool

from api.schemas.common import JsonObject, UtcDateTime
from api.textguard import check_storable

_ENDPOINT_EXAMPLE: dict[str, Any] = {
    "id": "whe_01jd8k3m5n7p9q2r4s6t8v0w2y",
    "organisation_id": "org_acme",
    "url": "https://hooks.example.com/hotline400",
    "description": "Order system",
    "event_types": ["application.approved", "application.rejected", "number.activated"],
    "enabled": True,
    "disabled_reason": None,
    "disabled_detail": None,
    "disabled_at": None,
    "failing_since": None,
    "secret_rotated_at": None,
    "previous_secret_expires_at": None,
    "created_at": "2026-12-01T01:00:00Z",
    "updated_at": "2026-12-01T01:00:00Z",
}

Url = Annotated[
    str,
    Field(min_length=1, max_length=2048, description="Where messages are POSTed; https in production."),
    AfterValidator(check_storable),
]
Description = Annotated[str, Field(max_length=500), AfterValidator(check_storable)]
EventTypeName = Annotated[str, Field(min_length=1, max_length=64)]


class WebhookEndpointCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "example": {
                "url": "https://hooks.example.com/hotline400",
                "event_types": ["application.approved", "application.rejected"],
                "description": "Order system",
            }
        },
    )

    url: Url
    event_types: list[EventTypeName] = Field(
        min_length=1, max_length=100, description="Types from `GET /v1/webhook-endpoints/event-types`."
    )
    description: Description | None = None
    enabled: StrictBool = True  # "off" or 1 for a switch means a client bug, not a choice
    organisation_id: str | None = Field(
        default=None,
        max_length=64,
        description="Admins: the organisation the endpoint is for (required). Applicants: omit it, or "
        "give their own.",
    )


class WebhookEndpointUpdate(BaseModel):
    """Only the fields sent change. Enabling a disabled endpoint clears why it was
    disabled; deliveries it missed meanwhile are sent again by a replay."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"example": {"enabled": True}})

    url: Url | None = None
    event_types: list[EventTypeName] | None = Field(default=None, min_length=1, max_length=100)
    description: Description | None = None
    enabled: StrictBool | None = None


class WebhookEndpoint(BaseModel):
    model_config = ConfigDict(json_schema_extra={"example": _ENDPOINT_EXAMPLE})

    id: str
    organisation_id: str
    url: str
    description: str | None
    event_types: list[str]
    enabled: bool
    disabled_reason: Literal["owner", "gone", "failing"] | None = Field(
        description="Why it is disabled: by its owner, it answered 410 Gone, or nothing could be delivered "
        "to it for the whole retry window (3 days)."
    )
    disabled_detail: str | None = Field(description="What happened, in words.")
    disabled_at: UtcDateTime | None
    failing_since: UtcDateTime | None = Field(
        description="First failed attempt since the last successful delivery; null while healthy."
    )
    secret_rotated_at: UtcDateTime | None
    previous_secret_expires_at: UtcDateTime | None = Field(
        description="Until when the secret before the last rotation still signs (beside the new one)."
    )
    created_at: UtcDateTime
    updated_at: UtcDateTime


class WebhookEndpointCreated(WebhookEndpoint):
    model_config = ConfigDict(
        json_schema_extra={
            "example": {**_ENDPOINT_EXAMPLE, "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}
        }
    )

    secret: str = Field(description="The signing secret (Standard Webhooks `whsec_...`); shown only here.")


class WebhookSecretRotated(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "endpoint": _ENDPOINT_EXAMPLE,
                "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                "previous_secret_expires_at": "2026-12-02T01:00:00Z",
            }
        }
    )

    endpoint: WebhookEndpoint
    secret: str = Field(description="The new signing secret; shown only here.")
    previous_secret_expires_at: UtcDateTime = Field(
        description="Messages carry a signature with the old secret too until then."
    )


class WebhookEventTypeOut(BaseModel):
    type: str
    description: str
    domain_event_types: list[str] = Field(
        description="The event log's types this is sent for (the timeline's `event_type`)."
    )


class WebhookEventTypeList(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "items": [
                    {
                        "type": "application.rejected",
                        "description": "An operator rejected the application (final).",
                        "domain_event_types": ["ApplicationRejected"],
                    }
                ]
            }
        }
    )

    items: list[WebhookEventTypeOut]


class WebhookAttempt(BaseModel):
    number: int
    attempted_at: UtcDateTime
    status_code: int | None = Field(description="The receiver's HTTP status; null if none came.")
    latency_ms: float = Field(description="From sending to the answer's status line (or the failure).")
    response_body: str | None = Field(description="The start of the receiver's answer (truncated).")
    error: str | None = Field(description="Why no answer came (timeout, refused address, connection...).")
    succeeded: bool


_DELIVERY_EXAMPLE: dict[str, Any] = {
    "id": "msg_6f1c0a0e6f7b4c55a1f1d7b8c2e9a001",
    "endpoint_id": "whe_01jd8k3m5n7p9q2r4s6t8v0w2y",
    "application_id": "app_01jd8k3m5n7p9q2r4s6t8v",
    "event_type": "application.rejected",
    "status": "succeeded",
    "attempts": 2,
    "next_attempt_at": None,
    "failure_reason": None,
    "created_at": "2026-12-01T01:00:00Z",
    "ended_at": "2026-12-01T01:00:06Z",
    "payload": {
        "type": "application.rejected",
        "timestamp": "2026-12-01T01:00:00Z",
        "data": {"application_id": "app_01jd8k3m5n7p9q2r4s6t8v", "reason_code": "documents_invalid"},
    },
    "attempt_log": [
        {
            "number": 1,
            "attempted_at": "2026-12-01T01:00:00Z",
            "status_code": 503,
            "latency_ms": 12.5,
            "response_body": "busy",
            "error": None,
            "succeeded": False,
        }
    ],
}


class WebhookDelivery(BaseModel):
    model_config = ConfigDict(json_schema_extra={"example": _DELIVERY_EXAMPLE})

    id: str = Field(description="The message id: `webhook-id` on every attempt.")
    endpoint_id: str
    application_id: str
    event_type: str
    status: Literal["pending", "succeeded", "failed"]
    attempts: int
    next_attempt_at: UtcDateTime | None = Field(description="When a pending delivery is tried next.")
    failure_reason: str | None = Field(
        description="For failed ones: `retries_exhausted`, `gone` (410) or `endpoint_disabled`."
    )
    created_at: UtcDateTime
    ended_at: UtcDateTime | None
    payload: JsonObject | None = Field(description="The message as sent (null before the first attempt).")
    attempt_log: list[WebhookAttempt]


class WebhookReplay(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"example": {"queued": 12, "since": "2026-11-30T16:00:00Z", "until": None}}
    )

    queued: int = Field(description="Messages queued again (or for the first time) for this endpoint.")
    since: UtcDateTime
    until: UtcDateTime | None

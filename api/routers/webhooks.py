"""Webhook endpoints: signed messages about an organisation's registrations
(docs/webhooks.md). An applicant manages its own organisation's endpoints; an
admin any organisation's."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request
from starlette.convertors import Convertor, register_url_convertor

from api.auth import Principal, allow
from api.permissions import Action
from api.routers._common import Ctx, Cursor, Limit, documented
from api.schemas.common import Page
from api.schemas.webhooks import (
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEndpointCreate,
    WebhookEndpointCreated,
    WebhookEndpointUpdate,
    WebhookEventTypeList,
    WebhookReplay,
    WebhookSecretRotated,
)
from api.services import webhooks
from api.services.documents import DocumentCipher

router = APIRouter(prefix="/v1/webhook-endpoints", tags=["webhooks"])


class _EndpointIdConvertor(Convertor[str]):
    """Matches only endpoint ids, so that /v1/webhook-endpoints/event-types is never
    read as an endpoint: PATCH there is 405 (GET only), not a 422 about an id.
    Routes spell it {endpoint_id:webhook_endpoint_id}; OpenAPI shows {endpoint_id}."""

    regex = r"whe_[a-z0-9]{26}"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("webhook_endpoint_id", _EndpointIdConvertor())

EndpointId = Annotated[
    str,
    Path(
        pattern=r"^whe_[a-z0-9]{26}$",
        description="The endpoint id.",
        examples=["whe_01jd8k3m5n7p9q2r4s6t8v0w2y"],
    ),
]
DeliveryId = Annotated[
    str,
    Path(pattern=r"^msg_[0-9a-f]{32}$", description="The delivery's id, its `webhook-id`."),
]


def _cipher(request: Request) -> DocumentCipher:
    cipher: DocumentCipher = request.app.state.document_cipher
    return cipher


@router.get(
    "/event-types",
    response_model=WebhookEventTypeList,
    summary="The webhook event-type catalogue",
    description="Every type an endpoint can subscribe to, and the event log's types each is sent for.",
    **documented(),
)
async def list_event_types(_: Annotated[Principal, allow(Action.READ_CATALOGUE)]) -> WebhookEventTypeList:
    return webhooks.event_types()


@router.post(
    "",
    status_code=201,
    response_model=WebhookEndpointCreated,
    summary="Create a webhook endpoint",
    description="The URL must be https in production and resolve to public addresses only. The signing "
    "`secret` is in this response only (rotate it to get a new one).",
    **documented(),
)
async def create_endpoint(
    body: WebhookEndpointCreate,
    request: Request,
    ctx: Ctx,
    principal: Annotated[Principal, allow(Action.MANAGE_WEBHOOKS)],
) -> WebhookEndpointCreated:
    async with ctx.connection() as conn:
        return await webhooks.create_endpoint(
            conn, principal, body, policy=webhooks.receiver_policy(ctx.settings), cipher=_cipher(request)
        )


@router.get(
    "",
    response_model=Page[WebhookEndpoint],
    summary="List webhook endpoints",
    description="Applicants see their organisation's; admins every organisation's, or one's with "
    "`organisation_id`.",
    **documented(),
)
async def list_endpoints(
    ctx: Ctx,
    principal: Annotated[Principal, allow(Action.MANAGE_WEBHOOKS)],
    organisation_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[WebhookEndpoint]:
    async with ctx.connection() as conn:
        return await webhooks.list_endpoints(
            conn, principal, organisation_id=organisation_id, cursor=cursor, limit=limit
        )


@router.get(
    "/{endpoint_id:webhook_endpoint_id}",
    response_model=WebhookEndpoint,
    summary="One webhook endpoint",
    **documented(404),
)
async def get_endpoint(
    endpoint_id: EndpointId, ctx: Ctx, principal: Annotated[Principal, allow(Action.MANAGE_WEBHOOKS)]
) -> WebhookEndpoint:
    async with ctx.connection() as conn:
        return await webhooks.get_endpoint(conn, principal, endpoint_id)


@router.patch(
    "/{endpoint_id:webhook_endpoint_id}",
    response_model=WebhookEndpoint,
    summary="Change a webhook endpoint",
    description="Change its URL, event types, description, or enable/disable it. Disabling ends its "
    "pending deliveries as failed; enabling clears `disabled_reason`. Replay what was missed meanwhile.",
    **documented(404),
)
async def update_endpoint(
    endpoint_id: EndpointId,
    body: WebhookEndpointUpdate,
    ctx: Ctx,
    principal: Annotated[Principal, allow(Action.MANAGE_WEBHOOKS)],
) -> WebhookEndpoint:
    async with ctx.connection() as conn:
        return await webhooks.update_endpoint(
            conn, principal, endpoint_id, body, policy=webhooks.receiver_policy(ctx.settings)
        )


@router.delete(
    "/{endpoint_id:webhook_endpoint_id}",
    response_model=WebhookEndpoint,
    summary="Delete a webhook endpoint",
    description="Deletes the endpoint and its delivery log; returns what was deleted.",
    **documented(404),
)
async def delete_endpoint(
    endpoint_id: EndpointId, ctx: Ctx, principal: Annotated[Principal, allow(Action.MANAGE_WEBHOOKS)]
) -> WebhookEndpoint:
    async with ctx.connection() as conn:
        return await webhooks.delete_endpoint(conn, principal, endpoint_id)


@router.post(
    "/{endpoint_id:webhook_endpoint_id}/rotate-secret",
    response_model=WebhookSecretRotated,
    summary="Rotate the signing secret",
    description="A new secret, shown once. For 24 hours messages carry two signatures (new and old "
    "secret), so receivers can switch without losing any.",
    **documented(404),
)
async def rotate_secret(
    endpoint_id: EndpointId,
    request: Request,
    ctx: Ctx,
    principal: Annotated[Principal, allow(Action.MANAGE_WEBHOOKS)],
) -> WebhookSecretRotated:
    async with ctx.connection() as conn:
        return await webhooks.rotate_secret(
            conn, principal, endpoint_id, cipher=_cipher(request), settings=ctx.settings
        )


@router.get(
    "/{endpoint_id:webhook_endpoint_id}/deliveries",
    response_model=Page[WebhookDelivery],
    summary="The endpoint's delivery log",
    description="Newest first, each with every attempt: its time, status code, latency and the start of "
    "the answer.",
    **documented(404),
)
async def list_deliveries(
    endpoint_id: EndpointId,
    ctx: Ctx,
    principal: Annotated[Principal, allow(Action.MANAGE_WEBHOOKS)],
    status: Annotated[Literal["pending", "succeeded", "failed"] | None, Query()] = None,
    event_type: Annotated[str | None, Query(max_length=64)] = None,
    application_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[WebhookDelivery]:
    async with ctx.connection() as conn:
        return await webhooks.list_deliveries(
            conn,
            principal,
            endpoint_id,
            status=status,
            event_type=event_type,
            application_id=application_id,
            cursor=cursor,
            limit=limit,
        )


@router.get(
    "/{endpoint_id:webhook_endpoint_id}/deliveries/{delivery_id}",
    response_model=WebhookDelivery,
    summary="One delivery, with every attempt",
    **documented(404),
)
async def get_delivery(
    endpoint_id: EndpointId,
    delivery_id: DeliveryId,
    ctx: Ctx,
    principal: Annotated[Principal, allow(Action.MANAGE_WEBHOOKS)],
) -> WebhookDelivery:
    async with ctx.connection() as conn:
        return await webhooks.get_delivery(conn, principal, endpoint_id, delivery_id)


@router.post(
    "/{endpoint_id:webhook_endpoint_id}/deliveries/{delivery_id}/redeliver",
    response_model=WebhookDelivery,
    summary="Send a delivery again",
    description="Queues a delivered or failed message again, with the same `webhook-id` and a fresh retry "
    "window. 409 if it is still pending or the endpoint is disabled.",
    **documented(404, 409),
)
async def redeliver(
    endpoint_id: EndpointId,
    delivery_id: DeliveryId,
    ctx: Ctx,
    principal: Annotated[Principal, allow(Action.MANAGE_WEBHOOKS)],
) -> WebhookDelivery:
    async with ctx.connection() as conn:
        return await webhooks.redeliver(conn, principal, endpoint_id, delivery_id)


@router.post(
    "/{endpoint_id:webhook_endpoint_id}/replay",
    response_model=WebhookReplay,
    summary="Send everything since a time again",
    description="After an outage: queues every message the endpoint's subscriptions give for events "
    "recorded (and deadline notices made) from `since` (to `until`), in event order, whether sent "
    "before or not (messages sent before keep their `webhook-id`). 409 if the endpoint is disabled.",
    **documented(404, 409),
)
async def replay(
    endpoint_id: EndpointId,
    ctx: Ctx,
    principal: Annotated[Principal, allow(Action.MANAGE_WEBHOOKS)],
    since: Annotated[datetime, Query(description="RFC 3339 time with offset.")],
    until: Annotated[datetime | None, Query(description="RFC 3339 time with offset; default now.")] = None,
) -> WebhookReplay:
    async with ctx.connection() as conn:
        return await webhooks.replay(conn, principal, endpoint_id, since=since, until=until)

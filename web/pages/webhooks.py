"""Webhook deliveries, for administrators: an organisation's endpoints, each
endpoint's delivery log (every attempt: time, status code, latency, the start of
the answer) and redelivering one message. Everything goes through the API's
webhook service (api.services.webhooks), with the staff member as the caller,
so the rules are the API's: Action.MANAGE_WEBHOOKS, which among staff only an
admin holds."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response

from api.errors import BadRequest, Conflict, InvalidInput
from api.permissions import Action
from api.routers.webhooks import DeliveryId, EndpointId
from api.services import webhooks
from web import messages as say
from web import views
from web.http import Staff, context, require
from web.i18n import N_

router = APIRouter()

ENDPOINTS_PER_PAGE = 50
DELIVERIES_PER_PAGE = 25
STATUSES = ("pending", "succeeded", "failed")
# The service's codes, in words (translated where they are shown).
LABELS: dict[str, dict[str, str]] = {
    "delivery_labels": {
        "pending": N_("Pending"),
        "succeeded": N_("Delivered"),
        "failed": N_("Failed"),
    },
    "failure_labels": {
        "retries_exhausted": N_("Retries exhausted"),
        "gone": N_("The receiver answered 410 Gone"),
        "endpoint_disabled": N_("Endpoint disabled"),
    },
    "disabled_labels": {
        "owner": N_("by its owner"),
        "gone": N_("the receiver answered 410 Gone"),
        "failing": N_("nothing could be delivered for the whole retry window"),
    },
}


@router.get("/webhooks")
async def endpoints_page(
    request: Request,
    staff: Annotated[Staff, require(Action.MANAGE_WEBHOOKS)],
    organisation: Annotated[str | None, Query(max_length=64)] = None,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> Response:
    organisation = (organisation or "").strip() or None
    page, errors, status = None, [], 200
    try:
        async with context(request).connection() as conn:
            page = await webhooks.list_endpoints(
                conn, staff.principal, organisation_id=organisation, cursor=cursor, limit=ENDPOINTS_PER_PAGE
            )
    except (InvalidInput, BadRequest) as exc:  # a cursor from another listing
        errors, status = say.lines(request, exc), exc.status
    return views.render(
        request,
        "webhooks.html",
        {"page": page, "organisation": organisation or "", "errors": errors, **LABELS},
        status_code=status,
    )


async def _endpoint_page(
    request: Request,
    staff: Staff,
    endpoint_id: str,
    *,
    status: str | None,
    application: str | None,
    cursor: str | None,
    errors: list[str] | None = None,
    status_code: int = 200,
) -> Response:
    errors = list(errors or [])
    deliveries = None
    async with context(request).connection() as conn:
        endpoint = await webhooks.get_endpoint(conn, staff.principal, endpoint_id)
        try:
            deliveries = await webhooks.list_deliveries(
                conn,
                staff.principal,
                endpoint_id,
                status=status,
                event_type=None,
                application_id=application,
                cursor=cursor,
                limit=DELIVERIES_PER_PAGE,
            )
        except (InvalidInput, BadRequest) as exc:
            errors += say.lines(request, exc)
            status_code = exc.status
    context_: dict[str, Any] = {
        "endpoint": endpoint,
        "deliveries": deliveries,
        "statuses": STATUSES,
        "query": {"status": status or "", "application": application or ""},
        "errors": errors,
        "redelivered": request.query_params.get("redelivered", ""),
        **LABELS,
    }
    return views.render(request, "webhook_endpoint.html", context_, status_code=status_code)


@router.get("/webhooks/{endpoint_id}")
async def endpoint_page(
    request: Request,
    staff: Annotated[Staff, require(Action.MANAGE_WEBHOOKS)],
    endpoint_id: EndpointId,
    status: Annotated[str | None, Query(max_length=16)] = None,
    application: Annotated[str | None, Query(max_length=64)] = None,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> Response:
    return await _endpoint_page(
        request,
        staff,
        endpoint_id,
        status=status if status in STATUSES else None,
        application=(application or "").strip() or None,
        cursor=cursor,
    )


@router.post("/webhooks/{endpoint_id}/deliveries/{delivery_id}/redeliver")
async def redeliver(
    request: Request,
    staff: Annotated[Staff, require(Action.MANAGE_WEBHOOKS)],
    endpoint_id: EndpointId,
    delivery_id: DeliveryId,
) -> Response:
    """Queues the message again (same webhook-id, a fresh retry window): 409 on
    the page while it is still pending or the endpoint is disabled."""
    try:
        async with context(request).connection() as conn:
            await webhooks.redeliver(conn, staff.principal, endpoint_id, delivery_id)
    except Conflict as exc:  # still pending, or the endpoint is disabled
        return await _endpoint_page(
            request,
            staff,
            endpoint_id,
            status=None,
            application=None,
            cursor=None,
            errors=[say.headline(request, exc)],
            status_code=exc.status,
        )
    return RedirectResponse(
        views.console_url(request, f"/webhooks/{endpoint_id}", redelivered=delivery_id), status_code=303
    )

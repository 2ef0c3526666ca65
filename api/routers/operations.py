"""What operators do: the review queue, audit decisions, real-name verification."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.auth import STAFF, Principal, allow
from api.routers._common import Ctx, Cursor, Gateway, Limit, documented
from api.routers.applications import ApplicationId
from api.schemas.applications import DecisionIn, VerificationIn
from api.schemas.common import Page
from api.schemas.registrations import Registration
from api.services import applications, registrations

router = APIRouter(tags=["operators"])


@router.get(
    "/v1/review-queue",
    response_model=Page[Registration],
    summary="Applications awaiting a decision",
    description="Overdue first, then oldest first; keyset-paginated.",
    **documented(),
)
async def review_queue(
    ctx: Ctx,
    _: Annotated[Principal, allow(*STAFF)],
    carrier: Annotated[str | None, Query(max_length=64)] = None,
    organisation_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[Registration]:
    async with ctx.connection() as conn:
        return await registrations.review_queue(
            conn, carrier=carrier, organisation_id=organisation_id, cursor=cursor, limit=limit
        )


@router.post(
    "/v1/applications/{application_id}/decision",
    response_model=Registration,
    summary="Decide an application",
    description="Approve; reject with a coded `reason_code`; or request changes naming the fields and/or "
    "document kinds. Returns the new state (the workflow applies it synchronously), or 409 "
    "(`wrong_stage`, `already_decided`) with the current state in `registration`.",
    **documented(404, 409),
)
async def decide(
    ctx: Ctx,
    gateway: Gateway,
    principal: Annotated[Principal, allow(*STAFF)],
    application_id: ApplicationId,
    body: DecisionIn,
) -> Registration:
    return await applications.decide(ctx, gateway, principal, application_id, body)


@router.post(
    "/v1/applications/{application_id}/verification",
    response_model=Registration,
    summary="Confirm or fail real-name verification",
    description="`pass` moves on to activation; `fail` closes the registration and releases the number. "
    "409 with the current state when no verification is awaited.",
    **documented(404, 409),
)
async def verify(
    ctx: Ctx,
    gateway: Gateway,
    principal: Annotated[Principal, allow(*STAFF)],
    application_id: ApplicationId,
    body: VerificationIn,
) -> Registration:
    return await applications.verify(ctx, gateway, principal, application_id, body)

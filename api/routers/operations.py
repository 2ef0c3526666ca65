"""What operators do: the review queue, audit decisions, real-name verification,
and, once a number is in service, suspension, resumption and real-name confirmation."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Query

from api.auth import Principal, allow
from api.permissions import Action
from api.routers._common import Ctx, Cursor, Gateway, Limit, documented
from api.routers.applications import ApplicationId
from api.schemas.applications import DECISION_EXAMPLES, DecisionIn, VerificationIn
from api.schemas.common import Page
from api.schemas.registrations import Registration
from api.schemas.service import RealnameConfirmationIn, ResumptionIn, SuspensionIn
from api.services import applications, registrations
from api.services.choices import check_carrier

router = APIRouter(tags=["operators"])


@router.get(
    "/v1/review-queue",
    response_model=Page[Registration],
    summary="Applications awaiting a decision",
    description="Overdue first, then oldest first; keyset-paginated.",
    **documented(400),
)
async def review_queue(
    ctx: Ctx,
    _: Annotated[Principal, allow(Action.REVIEW)],
    carrier: Annotated[str | None, Query(max_length=64)] = None,
    organisation_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[Registration]:
    async with ctx.connection() as conn:
        await check_carrier(conn, carrier)
        return await registrations.review_queue(
            conn, carrier=carrier, organisation_id=organisation_id, cursor=cursor, limit=limit
        )


@router.post(
    "/v1/applications/{application_id:application_id}/decision",
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
    principal: Annotated[Principal, allow(Action.DECIDE)],
    application_id: ApplicationId,
    body: Annotated[DecisionIn, Body(openapi_examples=DECISION_EXAMPLES)],
) -> Registration:
    return await applications.decide(ctx, gateway, principal, application_id, body)


@router.post(
    "/v1/applications/{application_id:application_id}/verification",
    response_model=Registration,
    summary="Confirm or fail real-name verification",
    description="`pass` moves on to activation; `fail` closes the registration and releases the number. "
    "409 with the current state when no verification is awaited.",
    **documented(404, 409),
)
async def verify(
    ctx: Ctx,
    gateway: Gateway,
    principal: Annotated[Principal, allow(Action.VERIFY)],
    application_id: ApplicationId,
    body: VerificationIn,
) -> Registration:
    return await applications.verify(ctx, gateway, principal, application_id, body)


@router.post(
    "/v1/applications/{application_id:application_id}/suspension",
    response_model=Registration,
    summary="Suspend a number in service",
    description="An operator suspends the number (complaints, improper marketing, use by a company other "
    "than the holder), always with a `reason`: calls no longer connect until an operator resumes it. "
    "Returns the new state (`service_state`), or 409 (`wrong_stage`) with the current state in "
    "`registration` when the number is not in service (before activation, after termination) or is "
    "already suspended by an operator.",
    **documented(404, 409),
)
async def suspend(
    ctx: Ctx,
    gateway: Gateway,
    principal: Annotated[Principal, allow(Action.SUSPEND_RESUME)],
    application_id: ApplicationId,
    body: SuspensionIn,
) -> Registration:
    return await applications.suspend(ctx, gateway, principal, application_id, body)


@router.post(
    "/v1/applications/{application_id:application_id}/resumption",
    response_model=Registration,
    summary="Resume a number an operator suspended",
    description="Lifts an operator's suspension, with a `reason`; a restriction for arrears or an "
    "overdue real-name registration stays until it is settled. Returns the new state, or 409 "
    "(`wrong_stage`) with the current state in `registration` when no operator suspension is in force.",
    **documented(404, 409),
)
async def resume(
    ctx: Ctx,
    gateway: Gateway,
    principal: Annotated[Principal, allow(Action.SUSPEND_RESUME)],
    application_id: ApplicationId,
    body: ResumptionIn,
) -> Registration:
    return await applications.resume(ctx, gateway, principal, application_id, body)


@router.post(
    "/v1/applications/{application_id:application_id}/realname-confirmation",
    response_model=Registration,
    summary="Confirm the holder's real-name registration",
    description="The holder's real-name information is registered and current: lifts a real-name "
    "restriction or suspension and sets the next deadline (`realname_due_at`). A `reason` is required. "
    "409 (`wrong_stage`) with the current state in `registration` when the number is not in service.",
    **documented(404, 409),
)
async def confirm_realname(
    ctx: Ctx,
    gateway: Gateway,
    principal: Annotated[Principal, allow(Action.CONFIRM_REALNAME)],
    application_id: ApplicationId,
    body: RealnameConfirmationIn,
) -> Registration:
    return await applications.confirm_realname(ctx, gateway, principal, application_id, body)

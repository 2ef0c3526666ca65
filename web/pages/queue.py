"""The review queue: what waits for staff (a decision or a real-name check),
oldest deadline first, with claims so that two reviewers do not work one case."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response

from api.errors import Conflict
from api.permissions import Action
from api.routers.applications import ApplicationId
from api.services import registrations
from api.services.registrations import display_number
from domain.requirements import load_catalogue
from domain.vanity import TIERS
from web import views
from web.http import Staff, console_settings, context, require
from web.lifecycle import lifecycle_of_row
from web.repositories import console as repo
from web.repositories.console import QueueFilters

router = APIRouter()

QUEUE_LIMIT = 50  # the oldest deadlines: what a reviewer takes next

Text = Annotated[str | None, Query(max_length=64)]


def _filters(
    carrier: str | None, tier: str | None, organisation: str | None, waiting_for: str | None
) -> QueueFilters:
    return QueueFilters(
        carrier=carrier or None,
        tier=tier if tier in TIERS else None,
        organisation_id=(organisation or "").strip() or None,
        waiting_for=waiting_for if waiting_for in repo.STAFF_WORK else None,
    )


async def _rows(request: Request, filters: QueueFilters) -> tuple[list[dict[str, object]], int]:
    async with context(request).connection() as conn:
        rows = await repo.work_list(conn, filters, QUEUE_LIMIT)
        total = len(rows) if len(rows) < QUEUE_LIMIT else await repo.work_count(conn, filters)
    lapse = console_settings(request).claim_seconds
    return [
        {
            **row,
            "lifecycle": lifecycle_of_row(row),
            "number_display": display_number(row["number"]),
            "claim_live": row["claimed_by"] is not None and row["claim_age_seconds"] < lapse,
        }
        for row in rows
    ], total


def _page_context(filters: QueueFilters) -> dict[str, object]:
    return {
        "filters": filters,
        "carriers": load_catalogue().carrier_codes,
        "tiers": TIERS,
        "waiting_options": repo.STAFF_WORK,
    }


@router.get("/queue")
@router.get("/queue/rows")
async def queue_page(
    request: Request,
    staff: Annotated[Staff, require(Action.REVIEW)],
    carrier: Text = None,
    tier: Text = None,
    organisation: Text = None,
    waiting_for: Text = None,
) -> Response:
    """The page, or (``/queue/rows``) only its rows, which the page re-fetches live."""
    filters = _filters(carrier, tier, organisation, waiting_for)
    rows, total = await _rows(request, filters)
    template = "_queue_rows.html" if request.url.path.endswith("/rows") else "queue.html"
    return views.render(request, template, {**_page_context(filters), "rows": rows, "total": total})


async def _claim_or_unclaim(request: Request, staff: Staff, application_id: str, claim: bool) -> Response:
    async with context(request).connection() as conn:
        # 404 for an application there is not (its claim row could not even be written).
        row = await registrations.get_application_row(conn, staff.principal, application_id)
        if claim and row["waiting_for"] not in repo.STAFF_WORK:
            raise Conflict(
                f"Nothing waits for staff on this application (waiting for {row['waiting_for']}): "
                "there is nothing to claim",
                code="nothing_to_review",
            )
        if claim:
            await repo.claim(
                conn, application_id, staff.session.staff_id, console_settings(request).claim_seconds
            )
        else:
            await repo.unclaim(conn, application_id, staff.session.staff_id)
    if request.headers.get("HX-Request"):
        # The queue's rows and the case's claim panel reload themselves on this event.
        return Response(status_code=204, headers={"HX-Trigger": "claims-changed"})
    return RedirectResponse(views.console_url(request, f"/applications/{application_id}"), status_code=303)


@router.post("/applications/{application_id}/claim")
async def claim(
    request: Request, staff: Annotated[Staff, require(Action.REVIEW)], application_id: ApplicationId
) -> Response:
    return await _claim_or_unclaim(request, staff, application_id, True)


@router.post("/applications/{application_id}/unclaim")
async def unclaim(
    request: Request, staff: Annotated[Staff, require(Action.REVIEW)], application_id: ApplicationId
) -> Response:
    return await _claim_or_unclaim(request, staff, application_id, False)

"""The dashboard: counts by lifecycle state and carrier, overdue per stage,
applications per day, time in review, and the SLA breaches; live over SSE.
Read-only for every role."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from api.permissions import Action
from api.services.registrations import display_number
from domain.lifecycle import Lifecycle
from web import views
from web.http import Staff, context, require
from web.lifecycle import lifecycle_of_row
from web.repositories import console as repo

router = APIRouter()

DAYS = 30
BREACHES = 50


async def figures(request: Request) -> dict[str, Any]:
    async with context(request).connection() as conn:
        counts = await repo.state_counts(conn)
        per_day = await repo.applications_per_day(conn, DAYS)
        review = await repo.time_in_review(conn, DAYS)
        breaches = await repo.overdue(conn, BREACHES)
    by_lifecycle: dict[str, int] = {lc.value: 0 for lc in Lifecycle}
    carriers: set[str] = set()
    grid: dict[tuple[str, str], int] = {}
    overdue_by_stage: dict[str, int] = {}
    total = 0
    for row in counts:
        lifecycle = lifecycle_of_row(row).value
        by_lifecycle[lifecycle] += row["total"]
        carriers.add(row["carrier_code"])
        grid[(lifecycle, row["carrier_code"])] = grid.get((lifecycle, row["carrier_code"]), 0) + row["total"]
        if row["overdue"]:
            overdue_by_stage[row["stage"]] = overdue_by_stage.get(row["stage"], 0) + row["overdue"]
        total += row["total"]
    return {
        "total": total,
        "by_lifecycle": by_lifecycle,
        "carriers": sorted(carriers),
        "grid": grid,
        "overdue_by_stage": overdue_by_stage,
        "overdue_total": sum(overdue_by_stage.values()),
        "chart": {
            "labels": [d["day"].strftime("%m-%d") for d in per_day],
            "values": [d["total"] for d in per_day],
        },
        "review": review,
        "breaches": [
            {**b, "lifecycle": lifecycle_of_row(b), "number_display": display_number(b["number"])}
            for b in breaches
        ],
        "days": DAYS,
    }


@router.get("/dashboard")
async def dashboard_page(
    request: Request, staff: Annotated[Staff, require(Action.VIEW_DASHBOARD)]
) -> Response:
    return views.render(request, "dashboard.html", await figures(request))


@router.get("/dashboard/figures")
async def dashboard_figures(
    request: Request, staff: Annotated[Staff, require(Action.VIEW_DASHBOARD)]
) -> Response:
    return views.render(request, "_dashboard_figures.html", await figures(request))

"""The working-day calendar: each year's official holiday schedule, loading one
(admin), which year is missing, and the recompute of deadlines a load starts.
How an operations team uses it: docs/calendar.md."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Header, Path, Request, Response
from starlette.convertors import Convertor, register_url_convertor

from activities.repositories import calendar as calendar_repo
from api.auth import Principal, allow
from api.errors import NotFound
from api.permissions import Action
from api.routers._common import Ctx, documented
from api.schemas.calendar import (
    CalendarLoad,
    CalendarStatus,
    CalendarYear,
    RecomputeProgressOut,
    RecomputeStarted,
)
from api.services import calendar
from api.services.workflow import WorkflowGateway
from domain.holiday_schedule import FIRST_YEAR, LAST_YEAR, YearSchedule
from workflows.calendar_contracts import recompute_workflow_id

router = APIRouter(prefix="/v1/calendar", tags=["calendar"])


class YearConvertor(Convertor[str]):
    """Matches four digits only, so that /v1/calendar/status is never read as a
    year: PUT there is 405 (GET only), not a 422 about a year. Routes spell it
    {year:year}; OpenAPI shows {year}."""

    regex = "[0-9]{4}"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("year", YearConvertor())

Year = Annotated[int, Path(ge=FIRST_YEAR, le=LAST_YEAR, description="The calendar year.", examples=[2027])]
IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        pattern=r'^(W/)?"?[0-9]{1,15}"?$',
        description="The year's `version` (its ETag) the schedule is meant to replace, `0` for a year never "
        "loaded: a load that finds another version is refused with 409. Without it, concurrent loads of "
        "one year are applied one after the other.",
        examples=['"1"'],
    ),
]

_YAML_EXAMPLE = """year: 2027
source: 国务院办公厅关于2027年部分节假日安排的通知
holidays:
  - {name: 元旦, start: 2027-01-01, end: 2027-01-03}
makeup_days: []
"""

# Read raw (JSON or YAML) and checked by domain.holiday_schedule, which reports
# every bad date at once; the documented schema is YearSchedule.
_SCHEDULE_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/YearSchedule"}},
            "application/yaml": {
                "schema": {"type": "string", "description": "The same fields, as YAML."},
                "example": _YAML_EXAMPLE,
            },
        },
    }
}

_START_TIMEOUT_SECONDS = 10.0


@router.get(
    "/status",
    response_model=CalendarStatus,
    summary="Which year's holiday schedule is missing",
    description="This year, and next year from 60 days before it starts, are `missing` when their official "
    "schedule is not loaded: deadlines counted across them are provisional until it is. `/readyz` reports "
    "the same (and stays ready), and the metric `hotline400_calendar_year_missing` alerts on it.",
    **documented(),
)
async def calendar_status(ctx: Ctx, _: Annotated[Principal, allow(Action.READ_CALENDAR)]) -> CalendarStatus:
    async with ctx.connection() as conn:
        return await calendar.status(conn, ctx.calendar)


@router.get(
    "/{year:year}",
    response_model=CalendarYear,
    summary="A year's holiday schedule",
    description="The holidays and make-up working days (调休) of the year, as the notice lists them, and "
    "`official: false` when no schedule is loaded for it (deadlines across it are then provisional).",
    **documented(),
)
async def get_year(
    year: Year, response: Response, ctx: Ctx, _: Annotated[Principal, allow(Action.READ_CALENDAR)]
) -> CalendarYear:
    async with ctx.connection() as conn:
        view = await calendar.year_view(conn, year)
    if view.version is not None:
        response.headers["ETag"] = f'"{view.version}"'
    return view


@router.put(
    "/{year:year}",
    response_model=CalendarLoad,
    summary="Load a year's official holiday schedule",
    description="Replaces the year's schedule, in one transaction, as the calendar's next version, and "
    "answers with the days added, removed and changed and how many open deadlines are recomputed. Body: "
    "JSON or YAML (`application/yaml`), holiday ranges and make-up days as the State Council's notice "
    "lists them (docs/calendar.md). Every problem is a 422 naming its date: a date outside the year, a day "
    "both a holiday and a make-up day, a make-up day that is not a Saturday or Sunday, overlapping "
    "ranges. The recompute runs as a workflow (`recompute.workflow_id`; progress at "
    "`GET /v1/calendar/{year}/recompute`).",
    openapi_extra=_SCHEDULE_BODY,
    **documented(409, 415),
)
async def load_year(
    year: Year,
    request: Request,
    response: Response,
    ctx: Ctx,
    principal: Annotated[Principal, allow(Action.LOAD_CALENDAR)],
    if_match: IfMatch = None,
) -> CalendarLoad:
    media = (request.headers.get("content-type") or "").split(";", 1)[0].strip().lower()
    schedule: YearSchedule = calendar.parse_schedule(await request.body(), media)
    expected = int(if_match.removeprefix("W/").strip('"')) if if_match else None
    async with ctx.connection() as conn:
        loaded = await calendar.load(
            conn, year, schedule, loaded_by=principal.actor_id, expected_version=expected
        )
    recompute = await _start_recompute(request, ctx.settings.temporal_task_queue, year, loaded.version)
    response.headers["ETag"] = f'"{loaded.version}"'
    return calendar.load_answer(year, loaded, recompute)


async def _start_recompute(request: Request, task_queue: str, year: int, version: int) -> RecomputeStarted:
    gateway: WorkflowGateway = request.app.state.gateway
    down = gateway.health.unavailable() if gateway.health is not None else None
    if down is None:
        try:
            return await asyncio.wait_for(
                calendar.start_recompute(gateway.client, task_queue, year, version), _START_TIMEOUT_SECONDS
            )
        except TimeoutError:
            down = "temporal"
    return RecomputeStarted(
        workflow_id=recompute_workflow_id(year, version),
        started=False,
        detail=f"The workflow service is unavailable ({down}): load the same schedule again to start the "
        "recompute; meanwhile each deadline is counted again when it falls due.",
    )


@router.get(
    "/{year:year}/recompute",
    response_model=RecomputeProgressOut,
    summary="Progress of the recompute after the year's last load",
    description="How many registrations the recompute found, answered, moved (`recomputed`), left as they "
    "were (`unchanged`) or found moved on (`not_applicable`); `finished` once all are done.",
    **documented(404),
)
async def recompute_progress(
    year: Year, ctx: Ctx, _: Annotated[Principal, allow(Action.VIEW_DASHBOARD)]
) -> RecomputeProgressOut:
    async with ctx.connection() as conn:
        record = await calendar_repo.year_record(conn, year)
    if record is None:
        raise NotFound(f"No schedule of {year} is loaded")
    return await calendar.progress(ctx.temporal, year, record["version"])

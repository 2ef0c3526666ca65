"""Loading and reading the working-day calendar, for ``/v1/calendar`` and for
``python -m app calendar`` (api/calendar_cli.py): both parse and check a
schedule the same way, load it the same way and start the same recompute.
"""

from __future__ import annotations

import json
import logging
from datetime import date, datetime
from typing import Any

import asyncpg
import yaml
from pydantic import ValidationError
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError, RPCStatusCode
from yaml.composer import ComposerError

from activities.calendar import CalendarStore
from activities.repositories import calendar as repo
from api.errors import Conflict, InvalidInput, NotFound, UnsupportedMediaType, field_error
from api.schemas.calendar import (
    CalendarDayChange,
    CalendarDayOut,
    CalendarLoad,
    CalendarStatus,
    CalendarYear,
    MissingYear,
    RecomputeProgressOut,
    RecomputeStarted,
)
from domain.calendar import CHINA_TZ, missing_years
from domain.holiday_schedule import (
    CalendarDay,
    DayChange,
    YearSchedule,
    check_schedule,
    days_of,
    schedule_of,
)
from workflows.calendar_contracts import (
    CALENDAR_RECOMPUTE_WORKFLOW,
    QUERY_RECOMPUTE_PROGRESS,
    RecomputeInput,
    RecomputeProgress,
    recompute_workflow_id,
)

log = logging.getLogger("api.calendar")

JSON = "application/json"
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")


class _NoAliasLoader(yaml.SafeLoader):
    """YAML without anchors and aliases: a schedule needs none, and aliases let a
    small document expand into a huge one."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            raise ComposerError(None, None, "aliases are not accepted", self.peek_event().start_mark)  # type: ignore[no-untyped-call]
        return super().compose_node(parent, index)


def parse_schedule(raw: bytes, media: str) -> YearSchedule:
    """A schedule from a body or file, JSON or YAML (``media``); 422 naming what is wrong."""
    if media == JSON:
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError):
            raise InvalidInput(
                "The schedule is not valid JSON",
                errors=[field_error("body", "invalid_json", "Send one JSON object, encoded as UTF-8.")],
            ) from None
    elif media in YAML_TYPES:
        try:
            data = yaml.load(raw, Loader=_NoAliasLoader)  # noqa: S506 - a SafeLoader, without aliases
        # ValueError: a scalar that looks like a date or number but is none
        # (2027-02-30, !!int 0x), which PyYAML's constructors raise as such.
        except (yaml.YAMLError, RecursionError, ValueError, TypeError, OverflowError) as exc:
            raise InvalidInput(
                "The schedule is not valid YAML",
                errors=[field_error("body", "invalid_yaml", f"{str(exc)[:300]}")],
            ) from None
    else:
        raise UnsupportedMediaType(
            "Send the schedule as JSON or YAML",
            errors=[
                field_error(
                    "Content-Type", "unsupported_media_type", f"Use {JSON} or {YAML_TYPES[0]} (or text/yaml)."
                )
            ],
        )
    try:
        return YearSchedule.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput(
            "The schedule has invalid fields",
            errors=[field_error(_field(e["loc"]), e["type"], e["msg"]) for e in exc.errors()],
        ) from None


def _field(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else ("." if out else "") + str(part)
    return out or "body"


def checked_days(schedule: YearSchedule, year: int) -> dict[date, CalendarDay]:
    """The days of ``schedule`` as the schedule of ``year``, or 422 listing every
    problem, each naming its date."""
    problems = check_schedule(schedule, year)
    if problems:
        raise InvalidInput(
            f"The schedule of {year} has {len(problems)} problem(s)",
            errors=[field_error(p.field, p.code, p.message) for p in problems],
        )
    return days_of(schedule)


async def load(
    conn: asyncpg.Connection,
    year: int,
    schedule: YearSchedule,
    *,
    loaded_by: str,
    expected_version: int | None,
) -> repo.LoadedYear:
    days = checked_days(schedule, year)
    source = schedule.source or f"loaded by {loaded_by}"
    try:
        loaded = await repo.load_year(
            conn, year, days, source=source, loaded_by=loaded_by, expected_version=expected_version
        )
    except repo.VersionConflict as exc:
        raise Conflict(
            f"The schedule of {year} is at version {exc.current}, not {exc.expected}: another load came "
            "first. Read it again (GET) and load over that version.",
            code="version_conflict",
            extra={"current_version": exc.current},
        ) from None
    log.info(
        "holiday schedule loaded",
        extra={"year": year, "calendar_version": loaded.version, "loaded_by": loaded_by, "days": len(days)},
    )
    return loaded


async def start_recompute(client: Client, task_queue: str, year: int, version: int) -> RecomputeStarted:
    """Start the recompute of the deadlines a load of ``year`` at ``version`` may
    move; the load stands whether or not the workflow service answers."""
    workflow_id = recompute_workflow_id(year, version)
    try:
        await client.start_workflow(
            CALENDAR_RECOMPUTE_WORKFLOW,
            RecomputeInput(year=year, calendar_version=version),
            id=workflow_id,
            task_queue=task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )
    except Exception as exc:  # noqa: BLE001 - the load is committed; say what is left to do
        log.warning("recompute not started", extra={"workflow_id": workflow_id, "error": type(exc).__name__})
        return RecomputeStarted(
            workflow_id=workflow_id,
            started=False,
            detail="The workflow service did not answer: load the same schedule again to start the "
            "recompute.",
        )
    return RecomputeStarted(workflow_id=workflow_id, started=True)


def load_answer(year: int, loaded: repo.LoadedYear, recompute: RecomputeStarted) -> CalendarLoad:
    changes = loaded.changes
    return CalendarLoad(
        year=year,
        version=loaded.version,
        previous_version=loaded.previous_version,
        added=[_change(c) for c in changes.added],
        removed=[_change(c) for c in changes.removed],
        changed=[_change(c) for c in changes.changed],
        deadlines_to_recompute=loaded.to_recompute,
        recompute=recompute,
    )


def _change(change: DayChange) -> CalendarDayChange:
    return CalendarDayChange(date=change.day, before=_day(change.before), after=_day(change.after))


def _day(day: CalendarDay | None) -> CalendarDayOut | None:
    return None if day is None else CalendarDayOut(date=day.day, kind=day.kind, name=day.name)


async def year_view(conn: asyncpg.Connection, year: int) -> CalendarYear:
    record = await repo.year_record(conn, year)
    if record is None:
        return CalendarYear(
            year=year,
            official=False,
            version=None,
            source=None,
            loaded_by=None,
            loaded_at=None,
            holidays=[],
            makeup_days=[],
        )
    schedule = schedule_of(year, (await repo.year_days(conn, year)).values())
    return CalendarYear(
        year=year,
        official=True,
        version=record["version"],
        source=record["source"],
        loaded_by=record["loaded_by"],
        loaded_at=record["loaded_at"],
        holidays=schedule.holidays,
        makeup_days=schedule.makeup_days,
    )


def china_today() -> date:
    return datetime.now(CHINA_TZ).date()


async def status(conn: asyncpg.Connection, store: CalendarStore, today: date | None = None) -> CalendarStatus:
    """Which year is missing, from ``store``'s calendar: one version check while
    it is current (/readyz asks on every probe)."""
    today = today or china_today()
    current = await store.current(conn)
    official = sorted(current.official_years)
    missing = [
        MissingYear(year=y, days_until=(date(y, 1, 1) - today).days) for y in missing_years(today, official)
    ]
    detail = None
    if missing:
        years = " and ".join(str(m.year) for m in missing)
        detail = (
            f"No official holiday schedule for {years}: deadlines counted across it are provisional "
            "(Monday to Friday) until it is loaded (docs/calendar.md)."
        )
    return CalendarStatus(
        today=today,
        version=current.version,
        official_years=official,
        missing=missing,
        detail=detail,
    )


async def progress(client: Client, year: int, version: int) -> RecomputeProgressOut:
    workflow_id = recompute_workflow_id(year, version)
    try:
        found: RecomputeProgress = await client.get_workflow_handle(workflow_id).query(
            QUERY_RECOMPUTE_PROGRESS, result_type=RecomputeProgress
        )
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise NotFound(f"No recompute of {year} at version {version}") from None
        raise
    return RecomputeProgressOut(workflow_id=workflow_id, **found.model_dump())

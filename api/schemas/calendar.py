"""The working-day calendar as the API shows it: one year's schedule, what a load
changed, which year is missing, and how far a recompute got."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.common import UtcDateTime
from domain.holiday_schedule import DayKind, HolidayRange, MakeupDay


class CalendarYear(BaseModel):
    """One year's schedule as the notice lists it (the shape ``PUT`` takes), and
    whether it is official."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "year": 2026,
                "official": True,
                "version": 1,
                "source": "国务院办公厅关于2026年部分节假日安排的通知",
                "loaded_by": "migration",
                "loaded_at": "2026-11-25T01:00:00Z",
                "holidays": [{"name": "元旦", "start": "2026-01-01", "end": "2026-01-03"}],
                "makeup_days": [{"date": "2026-01-04", "name": "元旦"}],
            }
        }
    )

    year: int
    official: bool = Field(
        description="Whether the official schedule of the year is loaded. When false, deadlines counted "
        "across the year are provisional (Monday to Friday) and recomputed once it is."
    )
    version: int | None = Field(
        description="The calendar version the year was last loaded at; send it back as `If-Match` to "
        "load over exactly this schedule."
    )
    source: str | None
    loaded_by: str | None
    loaded_at: UtcDateTime | None
    holidays: list[HolidayRange]
    makeup_days: list[MakeupDay]


class CalendarDayOut(BaseModel):
    date: date
    kind: DayKind
    name: str


class CalendarDayChange(BaseModel):
    date: date
    before: CalendarDayOut | None
    after: CalendarDayOut | None


class RecomputeStarted(BaseModel):
    workflow_id: str = Field(description="The recompute's workflow; its progress: `GET .../recompute`.")
    started: bool = Field(
        description="False when the workflow service could not be reached: the load stands, and loading "
        "the same file again starts the recompute (`detail` says why)."
    )
    detail: str | None = None


class CalendarLoad(BaseModel):
    """What a load changed."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "year": 2027,
                "version": 2,
                "previous_version": None,
                "added": [{"date": "2027-01-01", "before": None, "after": {"date": "2027-01-01",
                           "kind": "holiday", "name": "元旦"}}],
                "removed": [],
                "changed": [],
                "deadlines_to_recompute": 14,
                "recompute": {"workflow_id": "calendar-recompute-2027-v2", "started": True, "detail": None},
            }
        }
    )  # fmt: skip

    year: int
    version: int = Field(description="The calendar's version after this load.")
    previous_version: int | None = Field(
        description="The version the year was at before (null: it had no official schedule). Loads of one "
        "year are applied one at a time: a second one sent at the same moment is applied after the first, "
        "and names the first one's version here (or, with `If-Match`, is 409)."
    )
    added: list[CalendarDayChange]
    removed: list[CalendarDayChange]
    changed: list[CalendarDayChange]
    deadlines_to_recompute: int = Field(
        description="Open registrations whose deadline was provisional or counted across this year."
    )
    recompute: RecomputeStarted


class MissingYear(BaseModel):
    year: int
    days_until: int = Field(description="Days from today (China) to the year's first day; 0 or less: begun.")


class CalendarStatus(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "today": "2026-12-01",
                "version": 1,
                "official_years": [2025, 2026],
                "missing": [{"year": 2027, "days_until": 31}],
                "detail": "No official holiday schedule for 2027: deadlines counted across it are "
                "provisional until it is loaded.",
            }
        }
    )

    today: date = Field(description="Today in China.")
    version: int = Field(description="The calendar's current version.")
    official_years: list[int]
    missing: list[MissingYear] = Field(
        description="This year, and next year from 60 days before it starts, when its schedule is not loaded."
    )
    detail: str | None


class RecomputeProgressOut(BaseModel):
    workflow_id: str
    year: int
    calendar_version: int
    found: int
    done: int
    recomputed: int
    unchanged: int
    not_applicable: int
    failed: int
    failed_ids: list[str]
    finished: bool

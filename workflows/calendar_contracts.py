"""The contract of the calendar recompute workflow (``workflows/calendar_recompute.py``):
what the API and the CLI start it with and read back.

Loading a year's official holiday schedule starts one execution per load, id
``recompute_workflow_id(year, version)``: it sends every open registration whose
working-day deadline the load may move the ``recompute_deadline`` Update
(``workflows/contracts.py``), a bounded number at a time, and answers the
``progress`` Query (and returns the same) with how far it got.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

CALENDAR_RECOMPUTE_WORKFLOW = "CalendarRecompute"
QUERY_RECOMPUTE_PROGRESS = "progress"

_MODEL = ConfigDict(frozen=True, extra="ignore")


def recompute_workflow_id(year: int, calendar_version: int) -> str:
    return f"calendar-recompute-{year}-v{calendar_version}"


class RecomputeInput(BaseModel):
    model_config = _MODEL

    year: int
    calendar_version: int
    # Registrations recomputed at once, and how many ids one page of the search reads.
    concurrency: Annotated[int, Field(ge=1, le=200)] = 10
    page_size: Annotated[int, Field(ge=1, le=5000)] = 200
    # Registrations answered in one run before it continues as new (each adds a
    # few events to the history).
    per_run: Annotated[int, Field(ge=1, le=10_000)] = 2000
    # Where a run continued as new picks up: the last id answered, and the counts so far.
    after: str = ""
    progress: RecomputeProgress | None = None


class RecomputeOutcome(StrEnum):
    RECOMPUTED = "recomputed"  # a DeadlineRecomputed was recorded
    UNCHANGED = "unchanged"  # the deadline is the same on the new calendar
    NOT_APPLICABLE = "not_applicable"  # it moved on meanwhile (decided, withdrawn, ended)


class RecomputeProgress(BaseModel):
    """How far a recompute got. ``found`` grows as the search pages through the
    registrations; ``finished`` once every one found has been answered."""

    model_config = ConfigDict(frozen=False, extra="ignore")

    year: int
    calendar_version: int
    found: int = 0
    done: int = 0
    recomputed: int = 0
    unchanged: int = 0
    not_applicable: int = 0
    failed: int = 0
    # The first failures, for an operator to look at (each is retried first).
    failed_ids: list[str] = Field(default_factory=list)
    finished: bool = False


class RecomputePage(BaseModel):
    model_config = _MODEL

    year: int
    after: str = ""
    limit: int = 200


class RecomputeOne(BaseModel):
    model_config = _MODEL

    application_id: str
    year: int
    calendar_version: int


RecomputeInput.model_rebuild()

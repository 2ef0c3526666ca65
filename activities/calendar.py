"""The working-day calendar as stored, for whoever counts deadlines, and the
activities of the recompute that follows a load.

``CalendarStore`` reads the calendar from PostgreSQL and keeps it while its
version stands (one small query per use says whether it still does): the
registration's activities count deadlines with it when they record a step, the
API when it works out a change-of-details due date. A count across a year with
no official schedule is provisional, and logged once per year and process as a
warning, so that an operator learns the year is missing before anyone's
deadline depends on it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

import asyncpg
from temporalio import activity
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from activities.repositories import calendar as repo
from domain.calendar import Deadline, WorkingCalendar, deadline
from workflows.calendar_contracts import RecomputeOne, RecomputeOutcome, RecomputePage
from workflows.contracts import (
    ERR_WRONG_STAGE,
    UPDATE_RECOMPUTE_DEADLINE,
    DeadlineRecomputation,
    DeadlineRecomputationResult,
    registration_workflow_id,
)

log = logging.getLogger("activities.calendar")


class CalendarStore:
    def __init__(self) -> None:
        self._calendar: WorkingCalendar | None = None
        self._warned: set[int] = set()

    async def current(self, conn: asyncpg.Connection) -> WorkingCalendar:
        """The calendar as stored now."""
        cached = self._calendar
        if cached is None or cached.version != await repo.current_version(conn):
            cached = self._calendar = await repo.read_calendar(conn)
        return cached

    def deadline(self, calendar: WorkingCalendar, start: datetime, working_days: int) -> Deadline:
        due = deadline(start, working_days, calendar)
        for year in due.missing_years:
            if year not in self._warned:
                self._warned.add(year)
                log.warning(
                    "no official holiday schedule for %s: deadlines counted across it are provisional "
                    "(Monday to Friday) until it is loaded (python -m app calendar load FILE)",
                    year,
                    extra={"year": year, "calendar_version": calendar.version},
                )
        return due

    async def count(
        self, conn: asyncpg.Connection, start: datetime, working_days: int
    ) -> tuple[Deadline, int]:
        """``working_days`` after ``start`` on the calendar as stored, and its version."""
        calendar = await self.current(conn)
        return self.deadline(calendar, start, working_days), calendar.version


class CalendarActivities:
    """The recompute workflow's activities: find the registrations a load may
    move the deadline of, and send each the ``recompute_deadline`` Update."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    def callables(self) -> list[Callable[..., Any]]:
        return [self.registrations_to_recompute, self.recompute_registration]

    @activity.defn(name="calendar.registrations_to_recompute")
    async def registrations_to_recompute(self, page: RecomputePage) -> list[str]:
        async with self._pool.acquire() as conn:
            return await repo.registrations_to_recompute(conn, page.year, page.after, page.limit)

    @activity.defn(name="calendar.recompute_registration")
    async def recompute_registration(self, one: RecomputeOne) -> RecomputeOutcome:
        handle = activity.client().get_workflow_handle(registration_workflow_id(one.application_id))
        request = DeadlineRecomputation(
            year=one.year,
            calendar_version=one.calendar_version,
            correlation_id=f"calendar-{one.year}-v{one.calendar_version}",
        )
        try:
            result: DeadlineRecomputationResult = await handle.execute_update(
                UPDATE_RECOMPUTE_DEADLINE, request, result_type=DeadlineRecomputationResult
            )
        except WorkflowUpdateFailedError as exc:
            cause = exc.cause
            if isinstance(cause, ApplicationError) and cause.type == ERR_WRONG_STAGE:
                # Decided, withdrawn or closed since it was found: no deadline of its own to move.
                return RecomputeOutcome.NOT_APPLICABLE
            raise
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return RecomputeOutcome.NOT_APPLICABLE  # the workflow has ended
            raise
        return RecomputeOutcome.RECOMPUTED if result.recomputed else RecomputeOutcome.UNCHANGED

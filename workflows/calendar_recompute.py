"""After a year's official holiday schedule is loaded: every open registration
whose working-day deadline was provisional, or was counted across that year,
counts it again on the stored calendar.

One execution per load (``workflows/calendar_contracts.py``). It pages through
the registrations found (in id order, so that a page read later does not
repeat one) and sends each the ``recompute_deadline`` Update through an
activity, ``concurrency`` at a time, and continues as new every ``per_run`` of
them so that its history stays bounded (the Query and the result follow to the
last run). Each registration records ``DeadlineRecomputed`` when its deadline
moved, and its main loop sleeps until the new instant
(workflows/registration.py). ``progress`` says how far it got.

A registration that records a step between the load and its turn counts that
step's deadline on the new calendar already. One whose step counted a
provisional deadline just before the load, and committed after the search
passed it, counts again when that deadline falls due, before it acts on it
(``RegistrationWorkflow._review_due``, ``_resubmission_due``); a correction of a
year already official has no such second look, so load corrections while the
workflow service is up, and start the recompute again if in doubt
(``python -m app calendar recompute YEAR``).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

from activities.calendar import CalendarActivities
from workflows.calendar_contracts import (
    CALENDAR_RECOMPUTE_WORKFLOW,
    QUERY_RECOMPUTE_PROGRESS,
    RecomputeInput,
    RecomputeOne,
    RecomputeOutcome,
    RecomputePage,
    RecomputeProgress,
)

_SEARCH_TIMEOUT = timedelta(seconds=60)
# An Update waits for the registration's current step; a few attempts cover a
# worker restart, after which the registration counts itself when it falls due.
_UPDATE_TIMEOUT = timedelta(minutes=2)
_UPDATE_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_attempts=5)
_LISTED_FAILURES = 20


@workflow.defn(name=CALENDAR_RECOMPUTE_WORKFLOW, sandboxed=False)
class CalendarRecomputeWorkflow:
    @workflow.init
    def __init__(self, inp: RecomputeInput) -> None:
        fresh = RecomputeProgress(year=inp.year, calendar_version=inp.calendar_version)
        self._progress = inp.progress or fresh

    @workflow.run
    async def run(self, inp: RecomputeInput) -> RecomputeProgress:
        gate = asyncio.Semaphore(inp.concurrency)
        after = inp.after
        answered = 0
        while True:
            if answered >= inp.per_run or workflow.info().is_continue_as_new_suggested():
                # Each registration adds a few events: a run of its own per so many
                # keeps the history bounded, however many a load moves.
                workflow.continue_as_new(inp.model_copy(update={"after": after, "progress": self._progress}))
            page: list[str] = await workflow.execute_activity_method(
                CalendarActivities.registrations_to_recompute,
                RecomputePage(year=inp.year, after=after, limit=inp.page_size),
                start_to_close_timeout=_SEARCH_TIMEOUT,
            )
            if not page:
                break
            self._progress.found += len(page)
            await asyncio.gather(*(self._recompute(inp, gate, app_id) for app_id in page))
            answered += len(page)
            after = page[-1]
        self._progress.finished = True
        return self._progress

    async def _recompute(self, inp: RecomputeInput, gate: asyncio.Semaphore, application_id: str) -> None:
        async with gate:
            try:
                outcome: RecomputeOutcome = await workflow.execute_activity_method(
                    CalendarActivities.recompute_registration,
                    RecomputeOne(
                        application_id=application_id, year=inp.year, calendar_version=inp.calendar_version
                    ),
                    start_to_close_timeout=_UPDATE_TIMEOUT,
                    retry_policy=_UPDATE_RETRY,
                )
            except ActivityError:
                workflow.logger.warning("deadline of %s not recomputed", application_id)
                self._progress.failed += 1
                if len(self._progress.failed_ids) < _LISTED_FAILURES:
                    self._progress.failed_ids.append(application_id)
            else:
                if outcome is RecomputeOutcome.RECOMPUTED:
                    self._progress.recomputed += 1
                elif outcome is RecomputeOutcome.UNCHANGED:
                    self._progress.unchanged += 1
                else:
                    self._progress.not_applicable += 1
            self._progress.done += 1

    @workflow.query(name=QUERY_RECOMPUTE_PROGRESS)
    def progress(self) -> RecomputeProgress:
        return self._progress

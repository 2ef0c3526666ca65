"""Fixtures shared by the workflow tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
from temporalio.testing import WorkflowEnvironment

from app.settings import Settings
from tests.calendar_support import stand_ins_until
from tests.workflows import support as s


@pytest.fixture
async def env(
    time_env: WorkflowEnvironment, pool: asyncpg.Pool, settings: Settings, task_queue: str
) -> AsyncIterator[WorkflowEnvironment]:
    """The time-skipping server with a registration worker (registration and
    service workflows) on ``task_queue``. Its clock is wherever earlier tests left
    it: the years it reaches get stand-in holiday schedules, so that deadlines
    are not provisional for want of one."""
    await stand_ins_until(pool, await time_env.get_current_time())
    async with s.registration_worker(time_env.client, task_queue, pool, settings):
        yield time_env

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
from temporalio.testing import WorkflowEnvironment

from app.settings import Settings
from tests.workflows.support import registration_worker


@pytest.fixture
async def env(
    time_env: WorkflowEnvironment, pool: asyncpg.Pool, settings: Settings, task_queue: str
) -> AsyncIterator[WorkflowEnvironment]:
    """The time-skipping server with a registration worker on ``task_queue``."""
    async with registration_worker(time_env.client, task_queue, pool, settings):
        yield time_env


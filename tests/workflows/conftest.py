"""Fixtures shared by the workflow tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
from temporalio.testing import WorkflowEnvironment

from app.settings import Settings
from tests.workflows import support as s


@pytest.fixture
async def env(
    time_env: WorkflowEnvironment, pool: asyncpg.Pool, settings: Settings, task_queue: str
) -> AsyncIterator[WorkflowEnvironment]:
    """The time-skipping server with a registration worker (registration and
    service workflows) on ``task_queue``."""
    async with s.registration_worker(time_env.client, task_queue, pool, settings):
        yield time_env

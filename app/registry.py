"""What the worker runs: every workflow class and every activity callable.

Kept in one place so the worker process, the tests and the benches register the
same set.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import asyncpg

from app.settings import Settings


def workflow_classes() -> Sequence[type]:
    return []


def activity_callables(pool: asyncpg.Pool, settings: Settings) -> Sequence[Callable[..., Any]]:
    return []

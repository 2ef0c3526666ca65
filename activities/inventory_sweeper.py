"""Return expired holds and finished quarantines to the pool of available numbers.

Holds and quarantines carry their expiry in the row, and every hold attempt
already treats an expired one as free, so nothing is ever stuck. Sweeping makes
those numbers show up in searches again (which read ``status = 'available'``).

Two ways to run it:

- ``sweep_forever(pool, every=...)``: an asyncio task next to the worker's other
  background tasks (``app/worker.py``), stopped by an event.
- ``InventorySweepActivities.release_expired_numbers``: an activity, for a
  Temporal Schedule that starts a one-activity workflow every minute; the
  schedule then shows each run's outcome in the Temporal UI.
- ``python -m app numbers sweep [--every 60]`` from a shell or cron.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta

import asyncpg
from temporalio import activity

from activities.repositories import inventory

log = logging.getLogger("inventory.sweeper")

DEFAULT_EVERY = timedelta(minutes=1)


async def sweep_once(pool: asyncpg.Pool) -> int:
    async with pool.acquire() as conn:
        freed = await inventory.release_expired(conn, datetime.now(UTC))
    if freed:
        log.info("released expired holds and quarantines", extra={"numbers": freed})
    return freed


async def sweep_forever(
    pool: asyncpg.Pool, every: timedelta = DEFAULT_EVERY, stop: asyncio.Event | None = None
) -> None:
    """Sweep every ``every`` until ``stop`` is set; a failed sweep is logged and retried next time."""
    stop = stop or asyncio.Event()
    while not stop.is_set():
        try:
            await sweep_once(pool)
        except (OSError, asyncpg.PostgresError):
            # The database may be restarting; the next round tries again.
            log.exception("inventory sweep failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=every.total_seconds())


class InventorySweepActivities:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @activity.defn(name="release_expired_numbers")
    async def release_expired_numbers(self) -> int:
        return await sweep_once(self._pool)

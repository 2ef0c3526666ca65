"""A registration worker in its own process, for tests that kill it with SIGKILL.

``--hang-after X`` makes the worker stop dead right after step X has done its
work (committed its transaction, or had the carrier provision the number) and
before Temporal hears of it: the moment a crash does the most damage. X is an
event type (``PrepaymentExpired``, ``ApplicationApproved``...) or ``provision``.

    python -m tests.workflows.worker_process --address HOST:PORT --task-queue Q \
        --database-url URL --keys KEYS [--hang-after X]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import timedelta

from temporalio import activity

from activities.carrier import FakeCarrier, ProvisionRequest, ProvisionResult
from activities.registration import ApproveCommand, RegistrationActivities, StepResult, TransitionCommand
from app.db import create_pool
from app.settings import Settings
from app.temporal import data_converter
from tests.workflows.support import registration_worker


class HangingActivities(RegistrationActivities):
    hang_after = ""

    async def _maybe_hang(self, step: str) -> None:
        if step == self.hang_after:
            print(f"HANGING after {step}", flush=True)
            await asyncio.Event().wait()

    @activity.defn(name="registration.record")
    async def record(self, cmd: TransitionCommand) -> StepResult:
        result = await super().record(cmd)
        if result.event is not None:
            await self._maybe_hang(result.event.event_type.value)
        return result

    @activity.defn(name="registration.approve")
    async def approve(self, cmd: ApproveCommand) -> StepResult:
        result = await super().approve(cmd)
        if result.event is not None:
            await self._maybe_hang(result.event.event_type.value)
        return result

    @activity.defn(name="registration.provision")
    async def provision(self, request: ProvisionRequest) -> ProvisionResult:
        result = await super().provision(request)
        await self._maybe_hang("provision")
        return result


async def main(args: argparse.Namespace) -> None:
    from temporalio.client import Client

    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        environment="test",
        database_url=args.database_url,
        temporal_address=args.address,
        payload_encryption_keys=args.keys,
    )
    pool = await create_pool(settings.database_url, min_size=1, max_size=5)
    client = await Client.connect(args.address, data_converter=data_converter(settings.encryption_keys))
    acts = HangingActivities(pool, settings, FakeCarrier(pool))
    acts.hang_after = args.hang_after or ""
    # A short sticky timeout: after the kill, the server gives the workflow's next
    # task to another worker after one second instead of ten.
    async with registration_worker(
        client,
        args.task_queue,
        pool,
        settings,
        activities=acts,
        sticky_queue_schedule_to_start_timeout=timedelta(seconds=1),
    ):
        print("READY", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--address", required=True)
    parser.add_argument("--task-queue", required=True)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--keys", required=True)
    parser.add_argument("--hang-after", default="")
    asyncio.run(main(parser.parse_args()))
    sys.exit(0)

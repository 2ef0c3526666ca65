"""The bench's yardsticks: a bare workflow that runs five no-op activities in a row,
declared twice: in the SDK's sandbox (the default a naive workflow gets) and
outside it, as the registration and service workflows run. The ratio against the
unsandboxed one compares like with like; the sandboxed one is what a plain
5-step workflow costs out of the box.

Kept in its own module with nothing but temporalio imported, so the workflow
sandbox loads it as cheaply as possible.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow

STEPS = ("apply", "audit", "allocate", "verify", "activate")


@activity.defn(name="bench.step")
async def step(name: str) -> str:
    return name


async def _five_steps() -> list[str]:
    done = []
    for name in STEPS:
        done.append(await workflow.execute_activity(step, name, start_to_close_timeout=timedelta(seconds=30)))
    return done


@workflow.defn(name="BenchFiveActivities")
class FiveActivityWorkflow:
    @workflow.run
    async def run(self, key: str) -> list[str]:
        return await _five_steps()


@workflow.defn(name="BenchFiveActivitiesUnsandboxed", sandboxed=False)
class UnsandboxedFiveActivityWorkflow:
    @workflow.run
    async def run(self, key: str) -> list[str]:
        return await _five_steps()

"""The bench's yardstick: a bare workflow that runs five no-op activities in a row.

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


@workflow.defn(name="BenchFiveActivities")
class FiveActivityWorkflow:
    @workflow.run
    async def run(self, key: str) -> list[str]:
        done = []
        for name in STEPS:
            done.append(
                await workflow.execute_activity(step, name, start_to_close_timeout=timedelta(seconds=30))
            )
        return done

"""Scale-out: 2 API processes and 3 workers against one Temporal dev server and
one PostgreSQL, against 1 API + 1 worker in the same run.

    python -m bench.scale_out [--registrations 500] [--concurrency 40]

Each configuration drives ``--registrations`` registrations to ACTIVE through
the HTTP API (bench/drive.py: retries on the same Idempotency-Key; clients spread
over the configuration's APIs). In the scaled-out one, a worker is stopped
(SIGTERM) when a third of the registrations are done and started again
``--down`` seconds later. Printed per configuration: wall time, registrations
per second, per-registration time (p50, p95), errors clients saw; then the
throughput ratio, and the invariants of the chaos bench over both runs'
applications.

Both configurations share the servers (started once) and the machine: on a
machine with few cores, more processes compete for the same CPUs, so the ratio
says what the extra processes cost or buy here, not on a cluster.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass, field

from bench.drive import ORGANISATION, Ack, Driver, Outcome, check, print_violations
from bench.stack import Stack, run_bench

BLOCK = "40005"  # China Unicom numbers nobody else's bench uses


@dataclass
class Run:
    name: str
    outcomes: list[Outcome] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    application_ids: set[str] = field(default_factory=set)
    events: list[str] = field(default_factory=list)
    acks: list[Ack] = field(default_factory=list)
    started: float = 0.0

    @property
    def active(self) -> int:
        return sum(1 for o in self.outcomes if o.final == "active")

    def line(self) -> str:
        times = sorted(o.seconds for o in self.outcomes if o.final == "active")
        p50 = statistics.median(times) if times else float("nan")
        p95 = times[min(len(times) - 1, int(0.95 * len(times)))] if times else float("nan")
        rate = self.active / self.seconds if self.seconds else 0.0
        errors = ",".join(f"{k}x{v}" for k, v in self.errors.most_common()) or "0"
        return (
            f"{self.name:<22}{len(self.outcomes):>6}{self.active:>8}{self.seconds:>9.1f}{rate:>9.2f}"
            f"{p50:>9.2f}{p95:>9.2f}  {errors}"
        )


HEADER = (
    f"{'configuration':<22}{'sent':>6}{'active':>8}{'wall s':>9}{'reg/s':>9}{'p50 s':>9}{'p95 s':>9}  errors"
)


async def drive(
    stack: Stack,
    run: Run,
    tokens: dict[str, str],
    numbers: list[str],
    concurrency: int,
    at_third: asyncio.Event | None = None,
) -> None:
    driver = Driver(stack.base_urls(), tokens, errors=run.errors)
    await driver.upload_documents()
    limit = asyncio.Semaphore(concurrency)
    done = 0

    async def one(number: str) -> Outcome:
        nonlocal done
        async with limit:
            outcome = await driver.register(number)
        done += 1
        if at_third is not None and done >= len(numbers) // 3:
            at_third.set()
        return outcome

    since = await stack.database_now()
    run.started = time.monotonic()
    run.outcomes = list(await asyncio.gather(*(one(n) for n in numbers)))
    run.seconds = time.monotonic() - run.started
    run.application_ids = await stack.applications_since(since)
    await driver.close()
    run.acks = driver.acks


async def stop_and_start_a_worker(stack: Stack, run: Run, at_third: asyncio.Event, down: float) -> None:
    await at_third.wait()
    worker = stack.workers[-1]
    t0 = time.monotonic()
    await asyncio.to_thread(worker.stop)
    run.events.append(f"{worker.name} stopped (SIGTERM) {t0 - run.started:.1f} s into the run")
    await asyncio.sleep(down)
    await asyncio.to_thread(worker.start)
    run.events.append(f"{worker.name} started again {time.monotonic() - t0:.1f} s later")


async def run(args: argparse.Namespace) -> int:
    width = 10 - len(BLOCK)
    numbers = [f"{BLOCK}{i:0{width}d}" for i in range(2 * args.registrations)]
    stack = Stack.in_temporary_folder("h400-scale-", keep=args.keep)
    try:
        await asyncio.to_thread(stack.start_servers)
        tokens = await stack.seed(numbers, ORGANISATION)
        print(f"servers up in {stack.folder}; {os.cpu_count()} CPUs", flush=True)

        # 1 API + 1 worker.
        single = Run("1 API + 1 worker")
        stack.add_worker()
        stack.add_api()
        await stack.wait_ready()
        await drive(stack, single, tokens, numbers[: args.registrations], args.concurrency)
        for part in [*stack.apis, *stack.workers]:
            await asyncio.to_thread(part.stop)
        stack.apis.clear()
        stack.workers.clear()

        # 2 APIs + 3 workers, one worker stopped and started on the way.
        scaled = Run("2 APIs + 3 workers")
        for _ in range(3):
            stack.add_worker()
        for _ in range(2):
            stack.add_api()
        await stack.wait_ready()
        at_third = asyncio.Event()
        await asyncio.gather(
            drive(stack, scaled, tokens, numbers[args.registrations :], args.concurrency, at_third),
            stop_and_start_a_worker(stack, scaled, at_third, args.down),
        )

        print()
        print(
            f"{args.registrations} registrations to ACTIVE per configuration through the HTTP API, "
            f"{args.concurrency} in flight; one Temporal dev server and one PostgreSQL; "
            f"{os.cpu_count()} CPUs shared by every process and this load generator"
        )
        print(HEADER)
        print(single.line())
        print(scaled.line())
        for event in scaled.events:
            print(f"  {event}")
        ratio = (scaled.active / scaled.seconds) / (single.active / single.seconds)
        print(f"throughput ratio, 2 APIs + 3 workers / 1 API + 1 worker: {ratio:.2f}")

        acks = [*single.acks, *scaled.acks]
        violations = await check(
            stack.pg.url, stack.temporal.address, acks, single.application_ids | scaled.application_ids
        )
        print(f"invariants over both runs: checked {dict(violations.checked)}")
        print_violations(violations)
        broken = sum(violations.counts().values())
        incomplete = args.registrations * 2 - single.active - scaled.active
        if incomplete:
            finals = Counter(
                o.final[:80] for o in [*single.outcomes, *scaled.outcomes] if o.final != "active"
            )
            print(f"{incomplete} registrations did not reach ACTIVE: {dict(finals)}")
        print("ALL INVARIANTS HELD" if not broken else f"{broken} INVARIANT VIOLATIONS")
        return 1 if broken or incomplete else 0
    finally:
        await asyncio.to_thread(stack.stop)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--registrations", type=int, default=500, help="registrations per configuration")
    parser.add_argument("--concurrency", type=int, default=40, help="registrations in flight at once")
    parser.add_argument("--down", type=float, default=5.0, help="seconds the stopped worker stays down")
    parser.add_argument("--keep", action="store_true", help="keep the stack's folder (logs, data)")
    return run_bench(run, parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())

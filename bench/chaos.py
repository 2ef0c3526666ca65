"""Chaos: registrations through the HTTP API while the worker, the API, Temporal
and PostgreSQL are each killed (-9) and restarted, then the invariants.

    python -m bench.chaos [--registrations 200] [--concurrency 20] [--faults worker,api,temporal,postgres]

The stack runs as separate processes (bench/stack.py): embedded PostgreSQL, the
Temporal dev server, one worker, one API. For each fault in turn, this process
drives ``--registrations`` registrations to ACTIVE (a tenth of them withdrawn
after approval instead) through the API, and ``--racers`` that race a deadline
(a payment at the end of a short prepayment window; a withdrawal while a slowed
carrier provisions: the races of issue 12 item 1), retrying on the same Idempotency-Key
like a careful client (bench/drive.py); ``--kill-at`` seconds in, while
``--burst`` creates that are never retried (clients that give up) are on their
way, it kills the fault's target with SIGKILL, waits ``--down`` seconds and
starts it again (the worker ``--worker-kills`` times).

Printed per fault: what clients saw (errors by kind; every one was retried),
the recovery time (from the kill until every API answers /readyz 200 again:
PostgreSQL, Temporal and a polling worker), the registrations' outcomes and the
invariant counts over that fault's applications:

- every application has a workflow;
- every acknowledged action (2xx) has its event;
- event streams gapless; no event a registration has once recorded twice; no
  payment recorded twice; no number held by two registrations;
- the read model equals the workflow's status Query;
- no workflow task stuck (failing and retrying).

Exit code 1 when an invariant is broken.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass, field

from bench.drive import ORGANISATION, Driver, Outcome, Violations, check, print_violations
from bench.stack import Stack, run_bench

BLOCK = "40004"  # China Unicom numbers nobody else's bench uses
RACE_BLOCK = "40085"  # China Telecom numbers: their prepayment window is made short
RACE_CARRIER = "china_telecom"
RACE_WINDOW_SECONDS = 5.0
BURST_SPACING = 0.01  # seconds between the no-retry creates
CARRIER_DELAY_MS = 12_000  # provisioning of the withdrawal racers' numbers: past the task's heartbeat
FAULTS = ("worker", "api", "temporal", "postgres")


@dataclass
class Phase:
    fault: str
    errors: Counter[str] = field(default_factory=Counter)
    outcomes: list[Outcome] = field(default_factory=list)
    racers: list[Outcome] = field(default_factory=list)
    burst: list[str | None] = field(default_factory=list)
    kills: list[tuple[float, float]] = field(default_factory=list)  # (seconds into the phase, recovery)
    seconds: float = 0.0
    violations: Violations | None = None

    created: set[str] = field(default_factory=set)  # every application row of the phase

    def application_ids(self) -> set[str]:
        ids = {o.application_id for o in [*self.outcomes, *self.racers] if o.application_id}
        return ids | {a for a in self.burst if a} | self.created


def kill(stack: Stack, fault: str) -> None:
    if fault == "worker":
        stack.workers[0].kill()
    elif fault == "api":
        stack.apis[0].kill()
    elif fault == "temporal":
        stack.kill_temporal()
    elif fault == "postgres":
        stack.kill_postgres()


def restart(stack: Stack, fault: str) -> None:
    if fault == "worker":
        stack.workers[0].start()
    elif fault == "api":
        stack.apis[0].start()
    elif fault == "temporal":
        stack.restart_temporal()
    elif fault == "postgres":
        stack.restart_postgres()


async def run_phase(
    stack: Stack,
    driver: Driver,
    fault: str,
    numbers: list[str],
    racer_numbers: tuple[list[str], list[str]],
    args: argparse.Namespace,
) -> Phase:
    phase = Phase(fault)
    driver.errors = phase.errors
    limit = asyncio.Semaphore(args.concurrency)

    async def one(i: int, number: str) -> Outcome:
        async with limit:
            return await driver.register(number, withdraw=i % 10 == 9)

    since = await stack.database_now()
    started = time.monotonic()
    drive_numbers, burst_numbers = numbers[: args.registrations], numbers[args.registrations :]
    tasks = [asyncio.create_task(one(i, n)) for i, n in enumerate(drive_numbers)]

    async def racer(i: int) -> Outcome:
        # Spread over the phase, so that some race when the kill comes.
        await asyncio.sleep(i * args.racer_spacing)
        payers, withdrawers = racer_numbers
        if i % 2 == 0:
            return await driver.race_payment(payers[i // 2], RACE_CARRIER, RACE_WINDOW_SECONDS)
        return await driver.race_withdrawal(withdrawers[i // 2], CARRIER_DELAY_MS / 1000)

    racers = [asyncio.create_task(racer(i)) for i in range(args.racers)]

    async def burst_create(i: int, number: str) -> str | None:
        await asyncio.sleep(i * BURST_SPACING)
        return await driver.submit_once(number)

    # Creates from clients that will not retry, spread so that some are being
    # handled when the kill comes (between the row and the workflow start).
    burst_lead = len(burst_numbers) * BURST_SPACING * 0.6
    await asyncio.sleep(max(0.0, args.kill_at - burst_lead))
    burst = asyncio.gather(*(burst_create(i, n) for i, n in enumerate(burst_numbers)))
    await asyncio.sleep(burst_lead)
    kills = args.worker_kills if fault == "worker" else 1
    for k in range(kills):
        killed_at = time.monotonic()
        await asyncio.to_thread(kill, stack, fault)
        await asyncio.sleep(args.down)
        await asyncio.to_thread(restart, stack, fault)
        await stack.wait_ready(timeout=120)
        phase.kills.append((killed_at - started, time.monotonic() - killed_at))
        if k + 1 < kills:
            await asyncio.sleep(args.between_kills)
    phase.burst = list(await burst)
    phase.outcomes = list(await asyncio.gather(*tasks))
    phase.racers = list(await asyncio.gather(*racers))
    phase.seconds = time.monotonic() - started
    # Rows whose creation no client heard about count too (the orphans of item 2).
    phase.created = await stack.applications_since(since)
    phase.violations = await check(stack.pg.url, stack.temporal.address, driver.acks, phase.application_ids())
    return phase


def report(phase: Phase) -> None:
    finals = Counter(o.final[:60] for o in phase.outcomes)
    acked_burst = sum(1 for a in phase.burst if a)
    races = Counter(o.final[:60] for o in phase.racers)
    when = ", ".join(f"{at:.1f} s" for at, _ in phase.kills)
    print(f"\n== fault: {phase.fault} killed -9 at {when} into the phase ==", flush=True)
    print(f"  errors seen by clients (each retried): {dict(phase.errors.most_common()) or 'none'}")
    recoveries = ", ".join(f"{seconds:.1f} s" for _, seconds in phase.kills)
    print(f"  recovery (kill to every API ready again): {recoveries}")
    print(
        f"  registrations: {len(phase.outcomes)} in {phase.seconds:.1f} s, outcomes {dict(finals)}; "
        f"no-retry creates: {len(phase.burst)} sent, {acked_burst} acknowledged; "
        f"application rows: {len(phase.application_ids())}"
    )
    print(f"  racers (payment at the prepayment deadline, withdrawal during provisioning): {dict(races)}")
    for outcome in [*phase.outcomes, *phase.racers]:
        if outcome.final.startswith(("gave up", "unexpected")):
            print(f"    {outcome.application_id}: {outcome.final}")
    assert phase.violations is not None
    print(f"  checked: {dict(phase.violations.checked)}")
    print_violations(phase.violations)


async def run(args: argparse.Namespace) -> int:
    faults = [f for f in args.faults.split(",") if f]
    unknown = set(faults) - set(FAULTS)
    if unknown:
        print(f"unknown faults: {sorted(unknown)}; choose from {FAULTS}", file=sys.stderr)
        return 2
    per_phase = args.registrations + args.burst
    half = (args.racers + 1) // 2
    width = 10 - len(BLOCK)
    numbers = [f"{BLOCK}{i:0{width}d}" for i in range((per_phase + half) * len(faults))]
    numbers, slow = numbers[: per_phase * len(faults)], numbers[per_phase * len(faults) :]
    racing = [f"{RACE_BLOCK}{i:0{width}d}" for i in range(half * len(faults))]
    overrides = json.dumps({RACE_CARRIER: {"prepayment_window": f"PT{RACE_WINDOW_SECONDS:g}S"}})
    stack = Stack.in_temporary_folder(
        "h400-chaos-", keep=args.keep, extra_env={"CARRIER_OVERRIDES": overrides}
    )
    try:
        await asyncio.to_thread(stack.start_servers)
        tokens = await stack.seed([*numbers, *slow, *racing], ORGANISATION)
        await stack.slow_carrier(slow, CARRIER_DELAY_MS)
        stack.add_worker()
        stack.add_api()
        await stack.wait_ready()
        print(f"stack up in {stack.folder}: 1 API, 1 worker, PostgreSQL, Temporal dev server", flush=True)
        driver = Driver(stack.base_urls(), tokens)
        await driver.upload_documents()
        phases = []
        for i, fault in enumerate(faults):
            mine = numbers[i * per_phase : (i + 1) * per_phase]
            racer_numbers = (racing[i * half : (i + 1) * half], slow[i * half : (i + 1) * half])
            phase = await run_phase(stack, driver, fault, mine, racer_numbers, args)
            report(phase)
            phases.append(phase)
        await driver.close()
        broken = sum(sum(p.violations.counts().values()) for p in phases if p.violations)
        print(
            f"\n{'ALL INVARIANTS HELD' if not broken else f'{broken} INVARIANT VIOLATIONS'} "
            f"over {sum(len(p.application_ids()) for p in phases)} applications"
        )
        return 1 if broken else 0
    finally:
        await asyncio.to_thread(stack.stop)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--registrations", type=int, default=200, help="registrations driven per fault")
    parser.add_argument("--burst", type=int, default=50, help="no-retry creates fired at each kill")
    parser.add_argument("--concurrency", type=int, default=20, help="registrations in flight at once")
    parser.add_argument(
        "--racers",
        type=int,
        default=20,
        help="registrations per fault that race a deadline (issue 12 item 1)",
    )
    parser.add_argument("--racer-spacing", type=float, default=0.25, help="seconds between racers' starts")
    parser.add_argument("--down", type=float, default=3.0, help="seconds the killed part stays down")
    parser.add_argument(
        "--kill-at", type=float, default=6.0, help="seconds into each phase of the (first) kill"
    )
    parser.add_argument("--worker-kills", type=int, default=3, help="kills of the worker in its phase")
    parser.add_argument("--between-kills", type=float, default=3.0, help="seconds between the worker's kills")
    parser.add_argument("--faults", default=",".join(FAULTS), help="which parts to kill, in order")
    parser.add_argument("--keep", action="store_true", help="keep the stack's folder (logs, data)")
    return run_bench(run, parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())

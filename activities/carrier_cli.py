"""`python -m app fake-carrier fault|clear|calls`: make the dev stack's fake carrier misbehave.

    python -m app fake-carrier fault 4006000123 --fail-times 3   next 3 provisioning calls fail (retried)
    python -m app fake-carrier fault 4006000123 --reject         every call is refused for good
    python -m app fake-carrier fault 4006000123 --delay-ms 20000 every call takes 20 s
    python -m app fake-carrier clear 4006000123                  behave again
    python -m app fake-carrier calls REQUEST_ID                  what the carrier answered

The faults live in PostgreSQL, so they reach the worker of a running dev stack.
The provisioning request id of a registration is ``<application id>/provision``.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from activities.inventory_cli import database_url
from activities.repositories import fake_carrier
from app.db import create_pool
from app.settings import Settings


def add_fake_carrier_commands(sub: Any) -> None:
    parser = sub.add_parser(
        "fake-carrier",
        help="inject failures into the fake carrier of the dev stack",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="fake_carrier_command", required=True)
    fault = actions.add_parser("fault", help="make calls for a number fail, be refused or be slow")
    fault.add_argument("number")
    fault.add_argument("--fail-times", type=int, default=0, help="the next N calls fail transiently")
    fault.add_argument("--reject", action="store_true", help="every call is refused (not retried)")
    fault.add_argument("--delay-ms", type=int, default=0, help="each call takes this long first")
    fault.set_defaults(handler=_fault)
    clear = actions.add_parser("clear", help="remove the faults of a number")
    clear.add_argument("number")
    clear.set_defaults(handler=_clear)
    calls = actions.add_parser("calls", help="calls received for a provisioning request, by outcome")
    calls.add_argument("request_id")
    calls.set_defaults(handler=_calls)


async def _with_conn(settings: Settings, work: Any) -> Any:
    pool = await create_pool(database_url(settings), min_size=1, max_size=1)
    try:
        async with pool.acquire() as conn:
            return await work(conn)
    finally:
        await pool.close()


def _fault(args: argparse.Namespace, settings: Settings) -> int:
    async def work(conn: Any) -> None:
        await fake_carrier.inject_fault(
            conn, args.number, fail_times=args.fail_times, reject=args.reject, delay_ms=args.delay_ms
        )

    asyncio.run(_with_conn(settings, work))
    print(f"fake carrier: fault set for {args.number}")
    return 0


def _clear(args: argparse.Namespace, settings: Settings) -> int:
    asyncio.run(_with_conn(settings, lambda conn: fake_carrier.clear_fault(conn, args.number)))
    print(f"fake carrier: faults cleared for {args.number}")
    return 0


def _calls(args: argparse.Namespace, settings: Settings) -> int:
    counts = asyncio.run(_with_conn(settings, lambda conn: fake_carrier.count_calls(conn, args.request_id)))
    for outcome, n in sorted(counts.items()):
        print(f"{outcome:20} {n}")
    return 0

"""`python -m app numbers import|sweep|stats`: load and look after the number inventory.

    python -m app numbers import --block 4006      one configured carrier block (1M numbers)
    python -m app numbers import --prefix 40061    any prefix: 400 and up to 7 more digits
    python -m app numbers import --all             the whole 400 space (10M numbers)
    python -m app numbers sweep [--every 60]       release expired holds and quarantines
    python -m app numbers stats                    numbers per carrier and status, last imports

Without DATABASE_URL, in development, they use the dev stack's embedded
PostgreSQL when it is running (`python -m app dev`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

import asyncpg

from app.db import cli_database_url, with_cli_connection
from app.settings import Settings

T = TypeVar("T")


def add_number_commands(sub: Any) -> None:
    parser = sub.add_parser(
        "numbers",
        help="import numbers, sweep expired holds, inventory figures",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="numbers_command", required=True)

    load = actions.add_parser("import", help="load numbers with their vanity tags (safe to re-run)")
    which = load.add_mutually_exclusive_group(required=True)
    which.add_argument("--block", help="a carrier block listed in carrier_prefix, e.g. 4006")
    which.add_argument("--prefix", help="every number starting with this, e.g. 40061")
    which.add_argument("--all", action="store_true", help="all 10,000,000 numbers of the 400 space")
    load.add_argument(
        "--mode",
        choices=["auto", "bulk", "merge"],
        default="auto",
        help="merge: online, chunk by chunk, searches and allocations go on; bulk: fastest, but locks "
        "the table while it runs (for a maintenance window); auto (default): bulk only into an empty "
        "inventory, else merge",
    )
    load.add_argument("--workers", type=int, help="classifier processes (default: CPU count, at most 4)")
    load.add_argument(
        "--yield",
        dest="yield_ratio",
        type=float,
        default=1.0,
        help="merge mode: after each chunk, pause this many times as long as it took, leaving the "
        "database to the running stack (default 1; 0 for full speed)",
    )
    load.add_argument("--no-progress", action="store_true", help="no progress bar")
    load.set_defaults(handler=_import)

    sweep = actions.add_parser("sweep", help="release expired holds and finished quarantines")
    sweep.add_argument("--every", type=float, help="keep sweeping every this many seconds")
    sweep.set_defaults(handler=_sweep)

    stats = actions.add_parser("stats", help="numbers per carrier and status, and the last imports")
    stats.set_defaults(handler=_stats)


def database_url(settings: Settings) -> str:
    return cli_database_url(settings, "numbers")


def _with_connection(settings: Settings, action: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    return with_cli_connection(settings, "numbers", action)


def _import(args: argparse.Namespace, settings: Settings) -> int:
    from activities import inventory_import as imp

    async def action(conn: asyncpg.Connection) -> imp.ImportResult:
        if args.all:
            scope = imp.whole_space()
        elif args.block:
            scope = await imp.block_scope(conn, args.block)
        else:
            scope = imp.prefix_scope(args.prefix)
        return await imp.import_numbers(
            conn,
            scope,
            mode=args.mode,
            workers=args.workers,
            progress=not args.no_progress,
            yield_ratio=max(0.0, args.yield_ratio),
        )

    try:
        result = _with_connection(settings, action)
    except imp.InventoryImportError as exc:
        print(f"numbers import: {exc}", file=sys.stderr)
        return 2
    print(result.summary())
    print(f"  time spent: {result.timing_summary()}")
    return 0


def _sweep(args: argparse.Namespace, settings: Settings) -> int:
    from activities.inventory_sweeper import sweep_forever, sweep_once
    from app.db import create_pool

    async def main() -> None:
        pool = await create_pool(database_url(settings), min_size=1, max_size=2)
        try:
            if args.every:
                print(f"sweeping every {args.every:g} s; Ctrl-C stops", file=sys.stderr)
                await sweep_forever(pool, timedelta(seconds=args.every))
            else:
                freed = await sweep_once(pool)
                print(f"released {freed} numbers (expired holds and finished quarantines)")
        finally:
            await pool.close()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
    return 0


def _stats(args: argparse.Namespace, settings: Settings) -> int:
    async def action(conn: asyncpg.Connection) -> tuple[list[asyncpg.Record], list[asyncpg.Record]]:
        counts = await conn.fetch(
            """SELECT carrier_code, status, count(*) AS n FROM number_inventory
               GROUP BY carrier_code, status ORDER BY carrier_code, status"""
        )
        runs = await conn.fetch(
            """SELECT scope, mode, numbers_total, inserted, reclassified, started_at,
                      finished_at - started_at AS took
               FROM number_import_run ORDER BY id DESC LIMIT 5"""
        )
        return list(counts), list(runs)

    counts, runs = _with_connection(settings, action)
    total = sum(r["n"] for r in counts)
    print(f"{total:,} numbers in the inventory")
    for r in counts:
        print(f"  {r['carrier_code']:<16} {r['status']:<12} {r['n']:>12,}")
    if runs:
        print("last imports:")
    for r in runs:
        took = f"{r['took'].total_seconds():.1f} s" if r["took"] is not None else "unfinished"
        print(
            f"  {r['started_at']:%Y-%m-%d %H:%M} {r['scope']}: {r['inserted']:,} added, "
            f"{r['reclassified']:,} re-classified ({r['mode']}, {took})"
        )
    return 0


def inventory_bootstrap_hook(settings: Settings) -> list[str]:
    """Dev stack: load the default block into an empty inventory, say how to load the rest."""
    from activities import inventory_import as imp

    async def action(conn: asyncpg.Connection) -> list[str]:
        if await imp.inventory_is_empty(conn):
            scope = imp.prefix_scope(settings.default_embedded_block)
            result = await imp.import_numbers(conn, scope, progress=False)
            done = f"{result.inserted:,} numbers of {scope.label} loaded in {result.seconds:.1f} s"
        else:
            count = await conn.fetchval("SELECT count(*) FROM number_inventory")
            done = f"{count:,} numbers in the inventory"
        # The command as it works beside this very stack (its database port too).
        beside = "ENVIRONMENT=development"
        if settings.embedded_postgres_port != Settings.model_fields["embedded_postgres_port"].default:
            beside += f" EMBEDDED_POSTGRES_PORT={settings.embedded_postgres_port}"
        beside += " .venv/bin/python -m app"
        return [
            f"  Numbers      {done}; load more beside the running stack with",
            f"               {beside} numbers import --all  (10M, minutes)",
            f"               {beside} numbers import --block 4008  (1M)",
            f"  Staff        {beside} staff create --username NAME --role operator",
        ]

    return _with_connection(settings, action)

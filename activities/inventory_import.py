"""Load 400 numbers into the inventory: one prefix, one carrier block, or the whole space.

Numbers are classified by :mod:`domain.vanity` here, once, so that searches
only read stored tags. Classification is CPU-bound Python, so worker processes
encode chunks of COPY text while this process streams them to PostgreSQL.

Safe to re-run: rows that exist are never re-inserted, and a number in use
(held, allocated, in service, quarantined) is never touched. Available numbers
are re-classified and re-assigned a carrier when the rules or the prefix table
changed since the last run.

Two modes:

- ``merge`` (online): each chunk is committed on its own with every index in
  place; searches and registrations run on meanwhile.
- ``bulk``: one transaction that sets the search indexes aside, loads, and
  builds them again, which is several times faster for millions of rows but
  locks the table for the duration: every search, hold and allocation waits
  for it. ``auto`` picks it only for a first load into an empty inventory;
  once the inventory has rows, however large the import, it stays online
  (a running stack is then likely to be reading them).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import sys
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal, TextIO

import asyncpg
from tqdm import tqdm

from activities.repositories.inventory import (
    END_NUMBER,
    FIRST_NUMBER,
    UNASSIGNED_CARRIER,
    forget_cached_layout,
)
from domain.vanity import Classification, classify_suffix

log = logging.getLogger("inventory.import")

ImportMode = Literal["auto", "bulk", "merge"]

CHUNK = 100_000
# Online, each chunk is one transaction beside live traffic: smaller ones keep
# every commit's burst of index and WAL writes short, and the stretch of
# not-yet-committed numbers that a hold walking the index must step over
# (bench/inventory_bench.py: 5,000 put allocation's p99 over 100 ms, 2,000 not).
MERGE_CHUNK = 2_000
# Online, after each chunk the import pauses this many times as long as the
# chunk took, leaving the database (CPU, WAL, disk) to the running stack.
DEFAULT_YIELD = 1.0
# A fixed key: two imports at once would only fight over the same rows.
_LOCK_KEY = 400_400_001
_COPY_COLUMNS = ("number", "carrier_code", "status", "tier", "tags", "has_four", "min_monthly_spend_fen")


class InventoryImportError(Exception):
    """The import cannot start (bad scope, another import running)."""


@dataclass(frozen=True, slots=True)
class ImportScope:
    """The numbers [first, end) to load, and how to describe them."""

    label: str
    first: int
    end: int

    @property
    def size(self) -> int:
        return self.end - self.first

    @property
    def first_number(self) -> str:
        return f"{self.first:010d}"

    @property
    def last_number(self) -> str:
        return f"{self.end - 1:010d}"


class Timings(dict[str, float]):
    """Seconds spent per phase, to see where an import's time goes."""

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self[name] = self.get(name, 0.0) + time.perf_counter() - started


@dataclass(frozen=True, slots=True)
class ImportResult:
    scope: str
    mode: Literal["bulk", "merge"]
    numbers: int
    inserted: int
    reclassified: int
    seconds: float
    timings: Mapping[str, float]

    def timing_summary(self) -> str:
        return ", ".join(f"{name} {secs:.1f} s" for name, secs in self.timings.items())

    def summary(self) -> str:
        rate = self.numbers / self.seconds if self.seconds else 0.0
        return (
            f"{self.scope}: {self.numbers:,} numbers checked, {self.inserted:,} added, "
            f"{self.reclassified:,} re-classified, in {self.seconds:.1f} s "
            f"({rate:,.0f} numbers/s, {self.mode} mode)"
        )


def prefix_scope(prefix: str) -> ImportScope:
    """Every number starting with ``prefix`` (``400`` is the whole space)."""
    if not prefix.isdigit() or not prefix.startswith("400") or not 3 <= len(prefix) <= 10:
        raise InventoryImportError(f"prefix must be 400 followed by up to 7 digits, got {prefix!r}")
    free = 10 - len(prefix)
    first = int(prefix) * 10**free
    label = "the whole 400 space" if prefix == "400" else f"prefix {prefix}"
    return ImportScope(label, first, first + 10**free)


def whole_space() -> ImportScope:
    return prefix_scope("400")


async def block_scope(conn: asyncpg.Connection, block: str) -> ImportScope:
    """A carrier block: a prefix listed in ``carrier_prefix``."""
    carrier = await conn.fetchval("SELECT carrier_code FROM carrier_prefix WHERE prefix = $1", block)
    if carrier is None:
        known = await conn.fetch("SELECT prefix, carrier_code FROM carrier_prefix ORDER BY prefix")
        listed = ", ".join(f"{r['prefix']} ({r['carrier_code']})" for r in known)
        raise InventoryImportError(
            f"{block!r} is not a configured carrier block; configured blocks: {listed}. "
            f"Use --prefix to load numbers of an unassigned prefix."
        )
    scope = prefix_scope(block)
    return ImportScope(f"block {block} ({carrier})", scope.first, scope.end)


# --- encoding (runs in worker processes) ----------------------------------------------


def _carrier_of(prefix7: str, carriers: Mapping[str, str]) -> str | None:
    for length in range(7, 3, -1):
        carrier = carriers.get(prefix7[:length])
        if carrier is not None:
            return carrier
    return None


def encode_chunk(first: int, end: int, carriers: Mapping[str, str]) -> bytes:
    """COPY text rows (see _COPY_COLUMNS) for the numbers [first, end).

    Numbers of a prefix with no carrier are loaded as retired under the
    ``unassigned`` carrier: they exist, but cannot be offered until the prefix
    is configured and the import re-run.
    """
    # Keyed by id() because hashing the dataclass costs more than classifying;
    # the value keeps the object alive, so its id cannot be reused meanwhile.
    tails: dict[int, tuple[Classification, str]] = {}
    lines: list[str] = []
    append = lines.append
    n = first
    while n < end:
        # A 7-digit prefix (1000 numbers) has a single carrier.
        group_end = min(end, (n // 1000 + 1) * 1000)
        number = f"{n:010d}"
        carrier = _carrier_of(number[:7], carriers)
        head = "\tavailable\t" if carrier is not None else "\tretired\t"
        head = (carrier or UNASSIGNED_CARRIER) + head
        for m in range(n, group_end):
            suffix = f"{m - 4_000_000_000:07d}"
            c = classify_suffix(suffix)
            # The classifier hands back one shared object per pattern
            # combination, so its text is built once per combination.
            known = tails.get(id(c))
            if known is None:
                known = tails[id(c)] = (c, _tail(c))
            append(f"400{suffix}\t{head}{known[1]}")
        n = group_end
    return "".join(lines).encode()


def _tail(c: Classification) -> str:
    tags = "{" + ",".join(c.tags) + "}"
    return f"{c.tier}\t{tags}\t{'t' if c.has_four else 'f'}\t{c.min_monthly_spend_fen}\n"


def _in_the_background() -> None:
    """Classifier processes yield the CPU to everything else: beside a running
    stack, requests come first and the import takes what is left."""
    with contextlib.suppress(OSError, AttributeError):
        os.nice(10)


def _chunks(scope: ImportScope, size: int) -> Iterator[tuple[int, int]]:
    for first in range(scope.first, scope.end, size):
        yield first, min(scope.end, first + size)


# --- loading ---------------------------------------------------------------------------


async def _carrier_map(conn: asyncpg.Connection) -> dict[str, str]:
    rows = await conn.fetch("SELECT prefix, carrier_code FROM carrier_prefix")
    return {r["prefix"]: r["carrier_code"] for r in rows}


async def _encoded(
    scope: ImportScope,
    carriers: Mapping[str, str],
    workers: int,
    timings: Timings,
    size: int = CHUNK,
) -> AsyncIterator[tuple[int, int, bytes]]:
    """Encoded chunks of ``size`` in order, at most ``2 * workers`` in flight so
    memory stays bounded."""
    if workers <= 1 or scope.size <= CHUNK:
        # Not worth starting processes for (tests, the dev stack's first block).
        for first, end in _chunks(scope, size):
            with timings.phase("classifying"):
                data = encode_chunk(first, end, carriers)
            yield first, end, data
        return
    loop = asyncio.get_running_loop()
    # spawn, not fork: the parent has an event loop and open sockets to PostgreSQL.
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_in_the_background) as pool:
        pending: list[tuple[int, int, Future[bytes]]] = []
        chunks = _chunks(scope, size)
        for first, end in chunks:
            pending.append((first, end, pool.submit(encode_chunk, first, end, carriers)))
            if len(pending) >= 2 * workers:
                break
        while pending:
            first, end, fut = pending.pop(0)
            # Time the database spent waiting for the classifier processes.
            with timings.phase("waiting for classification"):
                data = await asyncio.wrap_future(fut, loop=loop)
            for nxt_first, nxt_end in chunks:
                pending.append((nxt_first, nxt_end, pool.submit(encode_chunk, nxt_first, nxt_end, carriers)))
                break
            yield first, end, data


class _BytesSource:
    """Async iterable over one chunk, for asyncpg's copy_to_table."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def __aiter__(self) -> _BytesSource:
        self._sent = False
        return self

    async def __anext__(self) -> bytes:
        if self._sent:
            raise StopAsyncIteration
        self._sent = True
        return self._data


_STAGING = "number_import_staging"

_MERGE_INSERT = f"""
INSERT INTO number_inventory ({", ".join(_COPY_COLUMNS)})
SELECT {", ".join(_COPY_COLUMNS)} FROM {_STAGING}
ON CONFLICT (number) DO NOTHING
"""

# Only available numbers (and the retired placeholders of unassigned prefixes)
# follow new rules or a new prefix table: a number in use keeps the price and
# carrier it was allocated under.
_MERGE_RECLASSIFY = f"""
UPDATE number_inventory n SET
    carrier_code = s.carrier_code,
    status = s.status,
    tier = s.tier,
    tags = s.tags,
    has_four = s.has_four,
    min_monthly_spend_fen = s.min_monthly_spend_fen,
    status_changed_at = CASE WHEN n.status = s.status THEN n.status_changed_at ELSE statement_timestamp() END,
    version = n.version + 1
FROM {_STAGING} s
WHERE n.number = s.number
  AND n.number >= $1 AND n.number < $2
  AND (n.status = 'available' OR (n.status = 'retired' AND n.carrier_code = '{UNASSIGNED_CARRIER}'))
  AND (n.carrier_code, n.status, n.tier, n.tags, n.has_four, n.min_monthly_spend_fen)
      IS DISTINCT FROM (s.carrier_code, s.status, s.tier, s.tags, s.has_four, s.min_monthly_spend_fen)
"""


async def _merge_chunk(conn: asyncpg.Connection, first: int, end: int, data: bytes) -> tuple[int, int]:
    """Add the chunk's missing numbers and re-classify its available ones; (added, changed)."""
    lo, hi = f"{first:010d}", f"{end:010d}"
    present = int(
        await conn.fetchval(
            "SELECT count(*) FROM number_inventory WHERE number >= $1 AND number < $2", lo, hi
        )
    )
    await conn.execute(f"TRUNCATE {_STAGING}")
    await conn.copy_to_table(_STAGING, source=_BytesSource(data), columns=list(_COPY_COLUMNS))
    # Room for the join's hash table: the chunk is small, but not work_mem small.
    await conn.execute("SET LOCAL work_mem = '64MB'")
    inserted = reclassified = 0
    if present < end - first:
        inserted = int((await conn.execute(_MERGE_INSERT)).split()[-1])
    if present:
        reclassified = int((await conn.execute(_MERGE_RECLASSIFY, lo, hi)).split()[-1])
    return inserted, reclassified


async def _secondary_indexes(conn: asyncpg.Connection) -> list[tuple[str, str]]:
    """Search indexes that can be rebuilt: not the primary key, not a unique index."""
    rows = await conn.fetch(
        """
        SELECT i.relname AS name, pg_get_indexdef(i.oid) AS definition
        FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
        WHERE x.indrelid = 'number_inventory'::regclass
          AND NOT x.indisprimary AND NOT x.indisunique
        ORDER BY i.relname
        """
    )
    return [(r["name"], r["definition"]) for r in rows]


async def import_numbers(
    conn: asyncpg.Connection,
    scope: ImportScope,
    *,
    mode: ImportMode = "auto",
    workers: int | None = None,
    progress: bool = True,
    out: TextIO | None = None,
    yield_ratio: float = DEFAULT_YIELD,
) -> ImportResult:
    """Load ``scope`` into the inventory on ``conn``; see the module docstring.

    ``yield_ratio``: online (merge), how long to pause after each chunk, as a
    multiple of the time the chunk took (0: full speed)."""
    if not (scope.first_number >= FIRST_NUMBER and scope.last_number < END_NUMBER):
        raise InventoryImportError(f"{scope.label} is outside the 400 number space")
    workers = workers or max(1, min(4, os.cpu_count() or 1))
    started = time.perf_counter()
    timings = Timings()
    if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", _LOCK_KEY):
        raise InventoryImportError("another number import is running on this database; wait for it to finish")
    try:
        if mode == "auto":
            # Not by size: a large load into a table in use would lock out its readers for minutes.
            mode = "bulk" if await inventory_is_empty(conn) else "merge"
        run_id = await conn.fetchval(
            """INSERT INTO number_import_run (scope, first_number, last_number, mode, numbers_total)
               VALUES ($1, $2, $3, $4, $5) RETURNING id""",
            scope.label,
            scope.first_number,
            scope.last_number,
            mode,
            scope.size,
        )
        await conn.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {_STAGING} (LIKE number_inventory INCLUDING DEFAULTS)"
        )
        carriers = await _carrier_map(conn)
        bar = tqdm(
            total=scope.size,
            unit="num",
            unit_scale=True,
            desc=f"importing {scope.label}",
            disable=not progress,
            file=out or sys.stderr,
            mininterval=0.5,
        )
        with bar:
            if mode == "bulk":
                inserted, reclassified = await _load_bulk(conn, scope, carriers, workers, bar, timings)
            else:
                inserted = reclassified = 0
                async for first, end, data in _encoded(scope, carriers, workers, timings, MERGE_CHUNK):
                    started_chunk = time.perf_counter()
                    with timings.phase("loading"):
                        async with conn.transaction():
                            ins, rec = await _merge_chunk(conn, first, end, data)
                    inserted += ins
                    reclassified += rec
                    bar.update(end - first)
                    if yield_ratio > 0:
                        with timings.phase("leaving the database to others"):
                            await asyncio.sleep((time.perf_counter() - started_chunk) * yield_ratio)
        # Fresh statistics are what makes the planner pick the partial and
        # trigram indexes. After a bulk load VACUUM also sets hint bits and
        # the visibility map, or the first searches pay for it; COPY FREEZE
        # did most of that already, and VACUUM skips the pages it marked.
        with timings.phase("vacuum and analyze"):
            # (VACUUM cannot run inside a caller's transaction; ANALYZE can.)
            if mode == "bulk" and inserted and not conn.is_in_transaction():
                await conn.execute("VACUUM (ANALYZE) number_inventory")
            elif inserted or reclassified:
                await conn.execute("ANALYZE number_inventory")
        await conn.execute(
            """UPDATE number_import_run SET inserted = $2, reclassified = $3, finished_at = clock_timestamp()
               WHERE id = $1""",
            run_id,
            inserted,
            reclassified,
        )
    finally:
        await conn.execute(f"DROP TABLE IF EXISTS {_STAGING}")
        await conn.fetchval("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
    # Searches cache where numbers lie; in this process, make them look again.
    forget_cached_layout()
    elapsed = time.perf_counter() - started
    return ImportResult(scope.label, mode, scope.size, inserted, reclassified, elapsed, dict(timings))


async def _foreign_keys(conn: asyncpg.Connection) -> list[tuple[str, str]]:
    rows = await conn.fetch(
        """
        SELECT conname AS name, pg_get_constraintdef(oid) AS definition FROM pg_constraint
        WHERE conrelid = 'number_inventory'::regclass AND contype = 'f' ORDER BY conname
        """
    )
    return [(r["name"], r["definition"]) for r in rows]


async def _truncate_if_empty(conn: asyncpg.Connection) -> bool:
    """Empty the (already empty) table in this transaction, which lets COPY FREEZE it."""
    if not await inventory_is_empty(conn):
        return False
    referenced = await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM pg_constraint WHERE confrelid = 'number_inventory'::regclass)"
    )
    if referenced:
        return False  # TRUNCATE refuses a table other tables point at
    await conn.execute("TRUNCATE number_inventory")
    return True


async def _load_bulk(
    conn: asyncpg.Connection,
    scope: ImportScope,
    carriers: Mapping[str, str],
    workers: int,
    bar: tqdm[Any],
    timings: Timings,
) -> tuple[int, int]:
    """Load with the table to ourselves: indexes and foreign keys set aside, then rebuilt.

    This is the recipe of PostgreSQL's "Populating a Database": the row-by-row
    foreign key check alone costs more than the COPY, and building an index
    once is far cheaper than growing it row by row. One transaction: if
    anything fails, the rollback brings the indexes and constraints back and
    leaves nothing half-loaded. Returns (inserted, reclassified).
    """
    inserted = reclassified = 0
    async with conn.transaction():
        await conn.execute("SET LOCAL maintenance_work_mem = '1GB'")
        await conn.execute("LOCK TABLE number_inventory IN ACCESS EXCLUSIVE MODE")
        indexes = await _secondary_indexes(conn)
        foreign_keys = await _foreign_keys(conn)
        for name, _ in foreign_keys:
            await conn.execute(f'ALTER TABLE number_inventory DROP CONSTRAINT "{name}"')
        for name, _ in indexes:
            await conn.execute(f'DROP INDEX "{name}"')
        # Rows COPY'd FREEZE into a table emptied in this transaction are
        # written frozen, with hint bits set, so VACUUM has little left to do.
        frozen = await _truncate_if_empty(conn)
        async for first, end, data in _encoded(scope, carriers, workers, timings):
            with timings.phase("loading"):
                ins, rec = await _bulk_chunk(conn, first, end, data, frozen)
            inserted += ins
            reclassified += rec
            bar.update(end - first)
        steps = len(indexes) + len(foreign_keys)
        for i, (_name, definition) in enumerate(indexes, 1):
            bar.set_description(f"building index {i}/{steps}")
            with timings.phase("building indexes"):
                await conn.execute(definition)
        for i, (name, definition) in enumerate(foreign_keys, len(indexes) + 1):
            bar.set_description(f"checking constraint {i}/{steps}")
            with timings.phase("checking constraints"):
                await conn.execute(f'ALTER TABLE number_inventory ADD CONSTRAINT "{name}" {definition}')
    return inserted, reclassified


async def _bulk_chunk(
    conn: asyncpg.Connection, first: int, end: int, data: bytes, frozen: bool
) -> tuple[int, int]:
    empty = frozen or not await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM number_inventory WHERE number >= $1 AND number < $2)",
        f"{first:010d}",
        f"{end:010d}",
    )
    if not empty:
        return await _merge_chunk(conn, first, end, data)
    # Nobody else can write while we hold the lock, so an empty range stays
    # empty: COPY straight in, no conflict handling.
    await conn.copy_to_table(
        "number_inventory", source=_BytesSource(data), columns=list(_COPY_COLUMNS), freeze=frozen
    )
    return end - first, 0


async def inventory_is_empty(conn: asyncpg.Connection) -> bool:
    return not await conn.fetchval("SELECT EXISTS (SELECT 1 FROM number_inventory)")

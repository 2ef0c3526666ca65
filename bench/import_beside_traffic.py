"""Import beside traffic: the API's latency while `numbers import` loads 1M numbers.

Used by bench/inventory_bench.py (its first phase, or alone with
``--only-import-beside-traffic``). On a database that already holds one carrier
block (the inventory is in use), the real API serves ``GET /v1/numbers`` from
its own process while this process allocates numbers the way the registration
workflow's activities do (hold a random matching number, then allocate it, each
its own commit), both at a steady rate. First for a while with nothing else
running (the baseline), then while the importer loads another 1M-number block
in its default mode (``auto``: online, since the inventory has rows).

Targets: p99 <= 100 ms on both during the import, and no errors.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from activities import inventory_import as imp
from activities.repositories import inventory as inv
from api.auth import Role
from api.services import keys
from app.db import create_pool
from app.embedded import free_port, spawn, stop_process
from app.settings import PROJECT_ROOT

TARGET_P99_MS = 100.0
SEARCHES_PER_S = 20.0
ALLOCATIONS_PER_S = 10.0
BASELINE_S = 15.0
PEPPER = "bench-import-pepper"
RUN = uuid.uuid4().hex[:8]

# What applicants ask GET /v1/numbers for, in turn.
SEARCHES: list[dict[str, str]] = [
    {},
    {"carrier": "china_unicom"},
    {"tier": "standard"},
    {"ends_with": "8"},
    {"exclude_four": "true"},
    {"tags": "aabb"},
    {"sample": "true"},
]
ALLOCATION_CRITERIA = [
    inv.SearchCriteria(),
    inv.SearchCriteria(carrier="china_unicom", exclude_four=True),
    inv.SearchCriteria(ends_with="8"),
]


@dataclass
class Series:
    latencies_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else float("nan")


async def _steady(rate: float, stop: asyncio.Event, call: Callable[[int], Coroutine[Any, Any, None]]) -> None:
    """Open loop: a call every 1/rate seconds whether or not earlier ones have answered,
    so that a stalled server shows as latency instead of slowing the load down."""
    pending: set[asyncio.Task[None]] = set()
    started = time.perf_counter()
    i = 0
    while not stop.is_set():
        task = asyncio.create_task(call(i))
        pending.add(task)
        task.add_done_callback(pending.discard)
        i += 1
        await asyncio.sleep(max(0.0, started + i / rate - time.perf_counter()))
    if pending:
        await asyncio.wait(pending, timeout=60)


async def _traffic(
    client: httpx.AsyncClient, pool: asyncpg.Pool, stop: asyncio.Event
) -> tuple[Series, Series]:
    searches, allocations = Series(), Series()
    expires = datetime.now(UTC) + timedelta(hours=1)

    async def search(i: int) -> None:
        t = time.perf_counter()
        try:
            response = await client.get("/v1/numbers", params={**SEARCHES[i % len(SEARCHES)], "limit": "20"})
            if response.status_code != 200:
                searches.errors.append(f"{response.status_code} {response.text[:200]}")
        except httpx.HTTPError as exc:
            searches.errors.append(repr(exc))
        searches.latencies_ms.append((time.perf_counter() - t) * 1000)

    async def allocate(i: int) -> None:
        registration = f"beside-{RUN}-{i}"
        t = time.perf_counter()
        try:
            async with pool.acquire() as conn:
                record = await inv.hold_matching(
                    conn, registration, ALLOCATION_CRITERIA[i % len(ALLOCATION_CRITERIA)], expires
                )
                if record is None:
                    allocations.errors.append("no matching number")
                else:
                    await inv.allocate(conn, record.number, registration)
        except (asyncpg.PostgresError, OSError) as exc:
            allocations.errors.append(repr(exc))
        allocations.latencies_ms.append((time.perf_counter() - t) * 1000)

    await asyncio.gather(_steady(SEARCHES_PER_S, stop, search), _steady(ALLOCATIONS_PER_S, stop, allocate))
    return searches, allocations


async def _viewer_token(url: str) -> str:
    conn = await asyncpg.connect(url)
    try:
        created = await keys.create_key(
            conn, PEPPER, role=Role.VIEWER, organisation_id=None, name="bench", created_by="bench"
        )
        return created.token
    finally:
        await conn.close()


async def _wait_healthy(base: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(base_url=base) as client:
        while time.monotonic() < deadline:
            try:
                if (await client.get("/healthz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.3)
    raise TimeoutError("the API did not start")


def _line(label: str, s: Series, seconds: float) -> str:
    return (
        f"  {label:<34}{len(s.latencies_ms):>6} calls in {seconds:5.1f} s   p50 {s.pct(0.5):7.1f} ms   "
        f"p99 {s.pct(0.99):7.1f} ms   max {max(s.latencies_ms, default=float('nan')):7.1f} ms   "
        f"errors {len(s.errors)}"
    )


async def bench_import_beside_traffic(url: str, folder: Path) -> bool:
    """Prints the figures; True when the targets are met."""
    conn = await asyncpg.connect(url)
    try:
        first = await imp.import_numbers(conn, await imp.block_scope(conn, "4006"), progress=False)
        print(f"\nimport beside traffic: the inventory in use holds {first.summary()}", flush=True)
        block = "4008"
        await imp.block_scope(conn, block)  # it is a configured block
    finally:
        await conn.close()

    port = free_port()
    env = {
        **os.environ,
        "ENVIRONMENT": "test",
        "DATABASE_URL": url,
        "TEMPORAL_ADDRESS": "127.0.0.1:9",  # a lazy client: number searches never call Temporal
        "API_KEY_PEPPER": PEPPER,
        "API_HOST": "127.0.0.1",
        "API_PORT": str(port),
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "WARNING",
    }
    api = spawn([sys.executable, "-m", "app", "api"], env=env, log_path=folder / "api.log", cwd=PROJECT_ROOT)
    pool = await create_pool(url, min_size=4, max_size=16)
    try:
        base = f"http://127.0.0.1:{port}"
        await _wait_healthy(base)
        headers = {"Authorization": f"Bearer {await _viewer_token(url)}"}
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as client:
            # Warm up: connections, statement caches, the first pages of each index.
            for i in range(2 * len(SEARCHES)):
                await client.get("/v1/numbers", params=SEARCHES[i % len(SEARCHES)])

            stop = asyncio.Event()
            traffic = asyncio.create_task(_traffic(client, pool, stop))
            await asyncio.sleep(BASELINE_S)
            stop.set()
            base_search, base_alloc = await traffic

            stop = asyncio.Event()
            traffic = asyncio.create_task(_traffic(client, pool, stop))
            started = time.perf_counter()
            # As a user runs it beside the stack: the CLI, in a process of its own.
            importer = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "app",
                "numbers",
                "import",
                "--block",
                block,
                "--no-progress",
                env=env,
                cwd=PROJECT_ROOT,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
            try:
                output, _ = await importer.communicate()
            finally:
                import_s = time.perf_counter() - started
                stop.set()
                during_search, during_alloc = await traffic
            result = output.decode().strip()
    finally:
        await pool.close()
        await asyncio.to_thread(stop_process, api)

    print("  imported meanwhile, `python -m app numbers import --block 4008` in its own process:")
    print("\n".join(f"    {line}" for line in result.splitlines()))
    print(f"  search: GET /v1/numbers through the API at {SEARCHES_PER_S:g}/s; allocation: hold a matching")
    print(f"  number, then allocate it (the workflow's SQL, each its own commit) at {ALLOCATIONS_PER_S:g}/s")
    print(_line("baseline, GET /v1/numbers", base_search, BASELINE_S))
    print(_line("baseline, allocation", base_alloc, BASELINE_S))
    print(_line("during the import, GET /v1/numbers", during_search, import_s))
    print(_line("during the import, allocation", during_alloc, import_s))
    for label, s in (("GET /v1/numbers", during_search), ("allocation", during_alloc)):
        for error in s.errors[:3]:
            print(f"    {label} error: {error}")
    met = (
        importer.returncode == 0
        and "merge mode" in result
        and all(s.pct(0.99) <= TARGET_P99_MS for s in (during_search, during_alloc))
        and not (during_search.errors or during_alloc.errors)
    )
    verdict = "ok" if met else "MISSED"
    print(f"  target: online import, p99 <= {TARGET_P99_MS:g} ms on both, 0 errors: {verdict}")
    return met

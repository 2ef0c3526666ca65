"""The stack as separate processes, for the chaos and scale-out benches.

One embedded PostgreSQL and one Temporal dev server, then any number of API
processes (`python -m app api`, each on its own port) and workers
(`python -m app worker`), every one in its own process group so that it can be
killed (-9), stopped (SIGTERM) and started again on its own. Logs go to files in
the stack's folder.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from activities.repositories import fake_carrier
from activities.repositories.inventory import insert_numbers
from api.auth import Role
from api.services import keys
from app.db import migrate
from app.embedded import EmbeddedPostgres, EmbeddedTemporal, free_port, spawn, stop_process
from app.settings import PROJECT_ROOT

PEPPER = "bench-pepper"


@dataclass
class Part:
    """One API or worker process."""

    role: str  # "api" or "worker"
    index: int
    env: dict[str, str]
    log: Path
    port: int | None = None
    process: subprocess.Popen[bytes] | None = None

    @property
    def name(self) -> str:
        return f"{self.role}{self.index}"

    def start(self) -> None:
        command = [sys.executable, "-m", "app", self.role]
        self.process = spawn(command, env=self.env, log_path=self.log, cwd=PROJECT_ROOT)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, signal.SIGTERM, timeout=20)

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


@dataclass
class Stack:
    folder: Path
    task_queue: str = "bench"
    log_level: str = "WARNING"
    keep: bool = False
    extra_env: dict[str, str] = field(default_factory=dict)
    pg: EmbeddedPostgres = field(init=False)
    temporal: EmbeddedTemporal = field(init=False)
    apis: list[Part] = field(default_factory=list)
    workers: list[Part] = field(default_factory=list)

    @classmethod
    def in_temporary_folder(cls, prefix: str, **kw: object) -> Stack:
        return cls(Path(tempfile.mkdtemp(prefix=prefix)), **kw)  # type: ignore[arg-type]

    def __post_init__(self) -> None:
        self.pg = EmbeddedPostgres(self.folder / "pg", free_port(), database="bench")
        self.temporal = EmbeddedTemporal(self.folder / "temporal", free_port(), None)

    # --- servers ---------------------------------------------------------------

    def start_servers(self) -> None:
        self.pg.start()
        migrate(self.pg.url)
        self.temporal.start()

    def kill_postgres(self) -> None:
        assert self.pg.process is not None
        os.killpg(self.pg.process.pid, signal.SIGKILL)
        self.pg.process.wait(10)
        # Its backends notice the postmaster's death and exit; until they have,
        # a new postmaster refuses the data folder.
        self.pg.process = None

    def restart_postgres(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.pg.start()
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                self.pg.process = None
                time.sleep(0.5)

    def kill_temporal(self) -> None:
        assert self.temporal.process is not None
        os.killpg(self.temporal.process.pid, signal.SIGKILL)
        self.temporal.process.wait(10)
        self.temporal.process = None

    def restart_temporal(self) -> None:
        self.temporal.start()

    # --- API and workers ----------------------------------------------------------

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        return {
            **os.environ,
            "ENVIRONMENT": "test",
            "DATABASE_URL": self.pg.url,
            "TEMPORAL_ADDRESS": self.temporal.address,
            "TEMPORAL_TASK_QUEUE": self.task_queue,
            "API_KEY_PEPPER": PEPPER,
            "API_HOST": "127.0.0.1",
            "API_TEMPORAL_LONG_POLL_SECONDS": "10",
            "LOG_FORMAT": "json",
            "LOG_LEVEL": self.log_level,
            # Carrier retries quickly: a bench has no time for minutes of backoff.
            "CARRIER_RETRY_INITIAL": "PT0.2S",
            "CARRIER_RETRY_MAX_INTERVAL": "PT2S",
            **self.extra_env,
            **(extra or {}),
        }

    def add_api(self, extra: dict[str, str] | None = None) -> Part:
        port = free_port()
        index = len(self.apis)
        env = self.env({"API_PORT": str(port), **(extra or {})})
        part = Part("api", index, env, self.folder / f"api{index}.log", port=port)
        part.start()
        self.apis.append(part)
        return part

    def add_worker(self, extra: dict[str, str] | None = None) -> Part:
        index = len(self.workers)
        env = self.env({"WORKER_METRICS_PORT": str(free_port()), **(extra or {})})
        part = Part("worker", index, env, self.folder / f"worker{index}.log")
        part.start()
        self.workers.append(part)
        return part

    def base_urls(self) -> list[str]:
        return [f"http://127.0.0.1:{api.port}" for api in self.apis if api.alive]

    async def wait_ready(self, timeout: float = 90) -> float:
        """Until every live API answers /readyz 200 (PostgreSQL, Temporal, a worker
        polling); returns the seconds it took."""
        started = time.monotonic()
        deadline = started + timeout
        async with httpx.AsyncClient(timeout=3) as client:
            for api in self.apis:
                if not api.alive and api.process is not None:
                    continue
                while True:
                    if not api.alive:
                        raise RuntimeError(f"{api.name} exited; see {api.log}")
                    try:
                        if (await client.get(f"http://127.0.0.1:{api.port}/readyz")).status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"{api.name} not ready within {timeout}s; see {api.log}")
                    await asyncio.sleep(0.2)
        return time.monotonic() - started

    # --- data ---------------------------------------------------------------------

    async def seed(self, numbers: list[str], organisation: str) -> dict[str, str]:
        """The numbers in the inventory and an API key per role; returns the tokens."""
        conn = await asyncpg.connect(self.pg.url)
        try:
            for i in range(0, len(numbers), 20_000):
                await insert_numbers(conn, numbers[i : i + 20_000])
            tokens = {}
            for role in Role:
                created = await keys.create_key(
                    conn,
                    PEPPER,
                    role=role,
                    organisation_id=organisation if role is Role.APPLICANT else None,
                    name=f"bench {role.value}",
                    created_by="bench",
                )
                tokens[role.value] = created.token
            return tokens
        finally:
            await conn.close()

    async def slow_carrier(self, numbers: list[str], delay_ms: int) -> None:
        """The fake carrier takes ``delay_ms`` to provision each of ``numbers``."""
        conn = await asyncpg.connect(self.pg.url)
        try:
            for number in numbers:
                await fake_carrier.inject_fault(conn, number, delay_ms=delay_ms)
        finally:
            await conn.close()

    async def database_now(self) -> object:
        conn = await asyncpg.connect(self.pg.url)
        try:
            return await conn.fetchval("SELECT clock_timestamp()")
        finally:
            await conn.close()

    async def applications_since(self, since: object) -> set[str]:
        """Every application row created since ``since`` (a database time)."""
        conn = await asyncpg.connect(self.pg.url)
        try:
            rows = await conn.fetch("SELECT id FROM application WHERE created_at >= $1", since)
            return {r["id"] for r in rows}
        finally:
            await conn.close()

    def stop(self) -> None:
        for part in [*reversed(self.apis), *reversed(self.workers)]:
            part.stop()
        self.temporal.stop()
        self.pg.stop()
        if not self.keep:
            shutil.rmtree(self.folder, ignore_errors=True)


def run_bench(
    main: Callable[[argparse.Namespace], Coroutine[Any, Any, int]], args: argparse.Namespace
) -> int:
    """Runs a bench's ``main``; SIGTERM and Ctrl-C cancel it, so that its
    ``finally`` still stops every process it started."""

    async def guarded() -> int:
        task = asyncio.current_task()
        assert task is not None
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        return await main(args)

    try:
        return asyncio.run(guarded())
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("interrupted; the stack was stopped", file=sys.stderr)
        return 130

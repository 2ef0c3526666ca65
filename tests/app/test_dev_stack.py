"""`python -m app dev` brings up the whole system; Ctrl-C stops every child; data survives."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import asyncpg
import pytest
from temporalio.client import Client, WorkflowExecutionStatus

from app.embedded import free_port
from app.settings import PROJECT_ROOT


def _descendants(pid: int) -> set[int]:
    # From /proc rather than `ps`, which slim images lack.
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
        children.setdefault(parent, []).append(int(stat.parent.name))
    found: set[int] = set()
    stack = [pid]
    while stack:
        for c in children.get(stack.pop(), []):
            if c not in found:
                found.add(c)
                stack.append(c)
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for our purposes.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


class DevStack:
    def __init__(self, data_dir: Path) -> None:
        self.api_port = free_port()
        self.pg_port = free_port()
        self.temporal_port = free_port()
        # No ENVIRONMENT: make dev on a fresh clone runs in development by itself.
        unset = ("DATABASE_URL", "TEMPORAL_ADDRESS", "ENVIRONMENT")
        self.env = {k: v for k, v in os.environ.items() if k not in unset} | {
            "DATA_DIR": str(data_dir),
            "API_PORT": str(self.api_port),
            "EMBEDDED_POSTGRES_PORT": str(self.pg_port),
            "EMBEDDED_TEMPORAL_PORT": str(self.temporal_port),
            "TEMPORAL_UI_PORT": str(free_port()),
            "WORKER_METRICS_PORT": str(free_port()),
        }
        self.proc: subprocess.Popen[str] | None = None
        self.log = data_dir.parent / f"dev-{uuid.uuid4().hex[:6]}.log"

    def start(self, timeout: float = 240) -> str:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "app", "dev"],
            cwd=PROJECT_ROOT,
            env=self.env,
            stdout=open(self.log, "w"),  # noqa: SIM115
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()[-3000:]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.api_port}/readyz", timeout=2) as r:
                    if r.status == 200 and "is up" in self.log.read_text():
                        return self.log.read_text()
            except OSError:
                pass
            time.sleep(0.5)
        raise AssertionError("dev stack not ready:\n" + self.log.read_text()[-3000:])

    def child(self, *marks: str) -> int | None:
        """The live descendant whose command line has every one of ``marks``."""
        assert self.proc is not None
        for pid in sorted(_descendants(self.proc.pid)):
            try:
                args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            words = [a.decode(errors="replace") for a in args]
            if all(any(m == w or w.endswith("/" + m) for w in words) for m in marks) and _alive(pid):
                return pid
        return None

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.api_port}/readyz", timeout=2) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    def interrupt(self) -> set[int]:
        assert self.proc is not None
        tree = _descendants(self.proc.pid)
        assert tree, "dev stack has no children"
        self.proc.send_signal(signal.SIGINT)  # what Ctrl-C delivers
        assert self.proc.wait(90) == 0, self.log.read_text()[-3000:]
        return tree


@pytest.mark.slow
def test_dev_stack_starts_stops_cleanly_and_keeps_data(tmp_path: Path) -> None:
    stack = DevStack(tmp_path / "var")
    out = stack.start()
    assert f"http://127.0.0.1:{stack.api_port}/docs" in out
    assert "Temporal UI" in out
    # Development mode reached the API: the embedded Temporal UI decodes without a key.
    codec = urllib.request.Request(
        f"http://127.0.0.1:{stack.api_port}/v1/codec/encode",
        data=b'{"payloads": []}',
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(codec, timeout=10) as answered:
        assert answered.status == 200
    db_url = f"postgres://postgres@127.0.0.1:{stack.pg_port}/hotline400"
    workflow_id = f"persist-{uuid.uuid4()}"
    marker = uuid.uuid4()

    async def write() -> None:
        conn = await asyncpg.connect(db_url)
        await conn.execute(
            """INSERT INTO domain_event (stream_id, version, event_id, event_type, actor,
               actor_role, correlation_id, occurred_at)
               VALUES ('dev-stack', 1, $1, 'Persisted', 't', 'system', 'c', now())""",
            marker,
        )
        await conn.close()
        client = await Client.connect(f"127.0.0.1:{stack.temporal_port}")
        await client.start_workflow("NotRegisteredAnywhere", id=workflow_id, task_queue="nobody-polls")

    asyncio.run(write())
    tree = stack.interrupt()
    time.sleep(1)
    leftovers = [p for p in tree if _alive(p)]
    assert not leftovers, f"orphan processes after Ctrl-C: {leftovers}"

    stack.start()

    async def read() -> tuple[object, WorkflowExecutionStatus | None]:
        conn = await asyncpg.connect(db_url)
        found = await conn.fetchval("SELECT event_type FROM domain_event WHERE event_id=$1", marker)
        await conn.close()
        client = await Client.connect(f"127.0.0.1:{stack.temporal_port}")
        desc = await client.get_workflow_handle(workflow_id).describe()
        return found, desc.status

    found, status = asyncio.run(read())
    stack.interrupt()
    assert found == "Persisted"
    assert status == WorkflowExecutionStatus.RUNNING


@pytest.mark.slow
def test_dev_stack_restarts_a_child_that_dies(tmp_path: Path) -> None:
    stack = DevStack(tmp_path / "var")
    stack.start()
    children = {
        "worker": ("app", "worker"),
        "api": ("app", "api"),
        "temporal": ("server", "start-dev"),
        "postgres": ("postgres", "-D"),
    }
    try:
        for name, marks in children.items():
            pid = stack.child(*marks)
            assert pid is not None, f"no {name} process"
            os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 90
            while True:
                assert stack.proc is not None and stack.proc.poll() is None, stack.log.read_text()[-3000:]
                again = stack.child(*marks)
                if again not in (None, pid) and stack.ready():
                    break
                assert time.monotonic() < deadline, f"{name} not back:\n" + stack.log.read_text()[-3000:]
                time.sleep(0.5)
        log = stack.log.read_text()
        assert log.count("child died; restarting it") == len(children), log[-3000:]
        assert log.count("child restarted") == len(children)
    finally:
        tree = stack.interrupt()  # Ctrl-C still stops everything
    time.sleep(1)
    assert not [p for p in tree if _alive(p)]

